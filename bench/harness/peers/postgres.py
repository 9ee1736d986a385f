"""The PostgreSQL behind http-db: one for the whole run (tests/integration/db_servers.py:
a temp dir, a free port, run as the postgres user when root), started on first use and
unpinned, so the servers' CPU time counts only the application."""

import atexit
import sys
from pathlib import Path

from ..common import ROOT

_PG_SERVER = None


def pg_server():
    global _PG_SERVER
    if _PG_SERVER is None:
        sys.path.insert(0, str(ROOT / "tests" / "integration"))
        from db_servers import PgServer
        _PG_SERVER = PgServer()
        atexit.register(_PG_SERVER.close)
    return _PG_SERVER


def missing():
    return None if list(Path("/usr/lib/postgresql").glob("*/bin/postgres")) else \
        "postgresql missing (apt-get install postgresql)"
