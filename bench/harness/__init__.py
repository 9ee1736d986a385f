"""tronada's benchmark harness, run as bench/run.py; one concern per module:

    common      paths (build/bin, bench/peers, docs/), HOST, PYTHON, log
    procfs      /proc: a server's process tree, CPU ticks and memory
    protocols   the harness's own clients: readiness probes and idle connections
    spec        Spec (how to start and probe one server) and "is it installed" checks
    process     Server: a running server, pinned, in its own session; free_port
    peers/      one module per peer program: its configuration and argv
    servers     SERVERS: every named server (a peer in one configuration)
    workloads   WORKLOADS: what each benchmark measures, against which servers
    loadgen     the load generators (wrk, h2load, echo_client, http_client_bench)
    measure     starting servers, interleaved rounds, CPU per request, memory
    fmt         number formatting and the median
    report      the Markdown section of docs/benchmarks.md, rewritten in place
    plots       the plots in docs/img/
    cli         the command line and running each workload
"""
