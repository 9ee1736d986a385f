"""Imports once (the master's check before binding), then crashes at import in every
worker: the master must back off and give up with a clear message."""
import os

_marker = os.environ["TRONADA_TEST_MARKER"]
if os.path.exists(_marker):
    os._exit(4)
open(_marker, "w").close()


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"never served"]
