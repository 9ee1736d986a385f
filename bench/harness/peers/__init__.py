"""One module per peer program: how to configure it for a benchmark and the argv that
starts it, how to tell it is installed, and its version. servers.py combines them into
the named servers the workloads use.

Each `..._command` function or builder returns a `command(port, workdir)` (see
spec.Spec): it writes any configuration into workdir and returns the argv.
"""
