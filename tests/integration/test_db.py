"""The database examples against real servers the tests start: 07_db (SQLite through the
executor) and 08_async_db (the async PostgreSQL pool), checked over HTTP and, for
PostgreSQL, from psycopg2 as a second client."""
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from db_servers import PgServer, pg_bin_dir


@pytest.fixture(scope="module")
def pg():
    if pg_bin_dir() is None:
        pytest.skip("postgresql is not installed")
    server = PgServer()
    yield server
    server.close()


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return r.status, r.read()


def post(port, path, fields):
    data = urllib.parse.urlencode(fields).encode()
    with urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data),
                                timeout=10) as r:
        return r.status, json.loads(r.read())


def check_entries_api(port):
    status, body = get(port, "/")
    assert status == 200
    entries = json.loads(body)["entries"]
    assert entries[0]["title"] == "Hello"
    hostile = "x'); DROP TABLE entries; --"
    status, created = post(port, "/entry", {"title": hostile, "body": "ünïcödé"})
    assert status == 201
    status, body = get(port, f"/entry/{created['id']}")
    entry = json.loads(body)
    assert entry["title"] == hostile and entry["body"] == "ünïcödé"
    with pytest.raises(urllib.error.HTTPError) as missing:
        get(port, "/entry/99999")
    assert missing.value.code == 404
    status, body = get(port, "/")
    assert len(json.loads(body)["entries"]) == len(entries) + 1
    return created["id"]


def test_sqlite_example_reads_and_writes_through_the_executor(start_server, tmp_path):
    server = start_server("07_db", "--db", str(tmp_path / "entries.sqlite"))
    check_entries_api(server.port)
    assert (tmp_path / "entries.sqlite").exists()


def test_async_pg_example_serves_entries_and_stays_responsive(start_server, pg):
    import psycopg2

    server = start_server("08_async_db", "--dsn", pg.dsn, "--pool", "4")
    new_id = check_entries_api(server.port)
    # A second client sees what the example wrote.
    with psycopg2.connect(pg.dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT title FROM entries WHERE id = %s", (new_id,))
        assert cur.fetchone()[0] == "x'); DROP TABLE entries; --"

    # While /slow holds a pg_sleep, other requests are answered: the loop never waits.
    done = {}

    def slow():
        done["slow"] = get(server.port, "/slow?seconds=1.5")
        done["slow_at"] = time.monotonic()

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.2)
    answered = []
    for _ in range(5):
        status, _ = get(server.port, "/")
        answered.append(status)
    fast_at = time.monotonic()
    t.join(15)
    assert answered == [200] * 5
    assert done["slow"][0] == 200
    assert fast_at < done["slow_at"], "requests waited for the slow query"


def test_async_pg_example_fails_clearly_without_a_server(start_server):
    import subprocess
    from conftest import BIN, free_port

    p = subprocess.run([str(BIN / "08_async_db"), "--port", str(free_port()),
                        "--dsn", f"host=127.0.0.1 port={free_port()} user=postgres connect_timeout=3"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1
    assert "cannot set up the database" in p.stderr
