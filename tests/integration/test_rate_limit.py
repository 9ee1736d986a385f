"""Route rate limits (`rate_limit = {...}`) through `tronada serve`: the memory store,
a real redis-server shared by two instances, and Redis failing mid-run."""
import os
import signal
import time

import pytest

from db_servers import RedisServer
from policy_servers import Tronada

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/redis-server"),
                                reason="redis-server is not installed")


@pytest.fixture
def site(tmp_path):
    public = tmp_path / "public"
    public.mkdir()
    (public / "index.html").write_text("hello\n")
    return tmp_path


@pytest.fixture
def tronadas():
    started = []

    def start(config):
        t = Tronada(config)
        started.append(t)
        return t

    yield start
    for t in started:
        t.stop()


@pytest.fixture
def redis():
    server = RedisServer()
    yield server
    server.close()


def write(site, name, policy):
    # A window of an hour: every request of a test falls in it (the sliding window's
    # arithmetic at edges is the unit tests' business, not a matter of timing here).
    path = site / name
    path.write_text(f"""
[[route]]
path = "/open/"
static = {{ root = "public" }}

[[route]]
path = "/"
rate_limit = {policy}
static = {{ root = "public" }}
""")
    return path


def test_memory_store_answers_429_with_headers(site, tronadas):
    t = tronadas(write(site, "t.toml", '{ requests = 3, per = "1h" }'))
    remaining = []
    for _ in range(3):
        status, headers, _ = t.request("GET", "/index.html")
        assert status == 200
        assert headers["RateLimit-Limit"] == "3"
        assert headers["RateLimit-Policy"] == "3;w=3600"
        assert 1 <= int(headers["RateLimit-Reset"]) <= 3600
        remaining.append(int(headers["RateLimit-Remaining"]))
    assert remaining == [2, 1, 0]
    status, headers, body = t.request("GET", "/index.html")
    assert status == 429
    assert b"too many requests" in body
    assert headers["RateLimit-Remaining"] == "0"
    assert 1 <= int(headers["Retry-After"]) <= 3600
    assert headers["Retry-After"] == headers["RateLimit-Reset"]
    # Another route of the same server is not limited.
    assert t.request("GET", "/open/index.html")[0] == 200
    assert t.metric("tronada_rate_limited_total") == 1
    assert t.metric("tronada_rate_limit_store_errors_total") == 0


def test_memory_store_keys_by_header(site, tronadas):
    t = tronadas(write(site, "t.toml", '{ requests = 1, per = "1h", key = "header:X-Api-Key" }'))
    assert t.request("GET", "/index.html", {"X-Api-Key": "a"})[0] == 200
    assert t.request("GET", "/index.html", {"X-Api-Key": "a"})[0] == 429
    assert t.request("GET", "/index.html", {"X-Api-Key": "b"})[0] == 200
    # Long values are keyed by their hash: still one budget per value.
    long_a, long_b = "a" * 1000, "a" * 999 + "b"
    assert t.request("GET", "/index.html", {"X-Api-Key": long_a})[0] == 200
    assert t.request("GET", "/index.html", {"X-Api-Key": long_a})[0] == 429
    assert t.request("GET", "/index.html", {"X-Api-Key": long_b})[0] == 200
    # Without the header the client's address is the key: a budget of its own.
    assert t.request("GET", "/index.html")[0] == 200
    assert t.request("GET", "/index.html")[0] == 429


def test_redis_store_is_one_budget_across_two_instances(site, tronadas, redis):
    config = write(site, "t.toml",
                   f'{{ requests = 4, per = "1h", store = "redis://127.0.0.1:{redis.port}" }}')
    a = tronadas(config)
    b = tronadas(config)
    statuses = [(a if i % 2 == 0 else b).request("GET", "/index.html")[0] for i in range(8)]
    assert statuses == [200] * 4 + [429] * 4
    status, headers, _ = a.request("GET", "/index.html")
    assert status == 429
    assert int(headers["Retry-After"]) >= 1
    assert a.metric("tronada_rate_limited_total") + b.metric("tronada_rate_limited_total") == 5
    assert a.metric("tronada_rate_limit_store_errors_total") == 0


def test_redis_slow_or_killed_with_allow(site, tronadas, redis):
    config = write(site, "t.toml",
                   f'{{ requests = 2, per = "1h", store = "redis://127.0.0.1:{redis.port}", '
                   f'timeout = "200ms" }}')
    t = tronadas(config)
    assert [t.request("GET", "/index.html")[0] for _ in range(3)] == [200, 200, 429]

    # Slow: Redis stops answering. The deadline decides (allow), the loop keeps serving.
    os.kill(redis.proc.pid, signal.SIGSTOP)
    try:
        status, headers, _ = t.request("GET", "/index.html")
        assert status == 200
        assert "RateLimit-Limit" not in headers  # the budget is unknown: no numbers
        assert t.request("GET", "/open/index.html")[0] == 200
    finally:
        os.kill(redis.proc.pid, signal.SIGCONT)
    assert t.metric("tronada_rate_limit_store_errors_total") >= 1

    # Killed: every request passes, and each is counted as decided without the store.
    redis.close()
    before = t.metric("tronada_rate_limit_store_errors_total")
    assert [t.request("GET", "/index.html")[0] for _ in range(5)] == [200] * 5
    assert t.metric("tronada_rate_limit_store_errors_total") >= before + 5
    log = t.stop()
    assert "rate limit of /: store redis://" in log
    # Logging is rate-limited: not one line per failed request.
    assert log.count("rate limit of /") <= 2


def test_redis_killed_with_deny_answers_503(site, tronadas, redis):
    config = write(site, "t.toml",
                   f'{{ requests = 2, per = "1h", store = "redis://127.0.0.1:{redis.port}", '
                   f'on_store_error = "deny" }}')
    t = tronadas(config)
    assert t.request("GET", "/index.html")[0] == 200
    redis.close()
    for _ in range(3):
        status, headers, body = t.request("GET", "/index.html")
        assert status == 503
        assert headers["Retry-After"] == "1"
        assert b"rate limit unavailable" in body
    assert t.request("GET", "/open/index.html")[0] == 200
    assert t.metric("tronada_rate_limit_store_errors_total") >= 3
    assert t.metric("tronada_rate_limited_total") == 0


def test_bad_rate_limit_stops_serve_with_a_message(site, tmp_path):
    import subprocess
    from policy_servers import TRONADA
    config = write(site, "bad.toml", '{ requests = 3, store = "memcached://x" }')
    r = subprocess.run([TRONADA, "check", "-c", str(config)], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode != 0
    assert "bad.toml:" in r.stderr
    assert 'store must be "memory" or "redis://HOST:PORT"' in r.stderr


def test_refused_upload_is_dropped_and_the_connection_kept(site, tronadas):
    import http.client
    t = tronadas(write(site, "t.toml", '{ requests = 1, per = "1h" }'))
    conn = http.client.HTTPConnection("127.0.0.1", t.port, timeout=10)
    try:
        conn.request("GET", "/index.html")
        r = conn.getresponse()
        assert r.status == 200
        r.read()
        body = b"x" * (4 * 1024 * 1024)
        for _ in range(2):
            conn.request("POST", "/index.html", body=body)
            r = conn.getresponse()
            assert r.status == 429
            r.read()
            assert not r.will_close  # the same connection serves the next request
    finally:
        conn.close()


def test_429_carries_cors_fields_and_preflights_are_not_counted(site, tronadas):
    path = site / "t.toml"
    path.write_text("""
[[route]]
path = "/"
rate_limit = { requests = 1, per = "1h" }
cors = { origins = ["https://a.example"] }
static = { root = "public" }
""")
    t = tronadas(path)
    preflight = {"Origin": "https://a.example", "Access-Control-Request-Method": "GET"}
    for _ in range(3):
        assert t.request("OPTIONS", "/index.html", preflight)[0] == 204
    origin = {"Origin": "https://a.example"}
    assert t.request("GET", "/index.html", origin)[0] == 200
    status, headers, _ = t.request("GET", "/index.html", origin)
    assert status == 429
    # A page's script can read the refusal (and its Retry-After) only with these.
    assert headers["Access-Control-Allow-Origin"] == "https://a.example"
    assert "Origin" in headers["Vary"]
    assert int(headers["Retry-After"]) >= 1


def test_workers_each_enforce_the_memory_limit(site, tronadas):
    import subprocess
    from conftest import free_port, wait_for_port
    from policy_servers import TRONADA
    config = write(site, "t.toml", '{ requests = 2, per = "1h" }')
    port = free_port()
    proc = subprocess.Popen([TRONADA, "serve", "-c", str(config), "-w", "2",
                             "-b", f"127.0.0.1:{port}", "--access-log", "off"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc)
        t = Tronada.__new__(Tronada)
        t.port = port
        statuses = [t.request("GET", "/index.html")[0] for _ in range(8)]
        # Each worker has its own budget of 2: at most 4 pass, whichever workers answer.
        assert 2 <= statuses.count(200) <= 4
        assert statuses.count(429) == 8 - statuses.count(200)
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_sighup_applies_a_new_limit(site, tronadas):
    config = write(site, "t.toml", '{ requests = 1, per = "1h" }')
    t = tronadas(config)
    assert [t.request("GET", "/index.html")[0] for _ in range(2)] == [200, 429]
    write(site, "t.toml", '{ requests = 3, per = "1h" }')
    t.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status, headers, _ = t.request("GET", "/index.html")
        if headers.get("RateLimit-Limit") == "3":
            break
        time.sleep(0.05)
    assert headers["RateLimit-Limit"] == "3"
    assert status == 200
    # The reloaded memory store started afresh: two more pass, then 429.
    assert [t.request("GET", "/index.html")[0] for _ in range(3)] == [200, 200, 429]


def test_waiting_for_redis_never_blocks_the_loop(site, tronadas, redis):
    import socket
    import threading
    config = write(site, "t.toml",
                   f'{{ requests = 5, per = "1h", store = "redis://127.0.0.1:{redis.port}", '
                   f'timeout = "3s" }}')
    t = tronadas(config)
    assert t.request("GET", "/index.html")[0] == 200  # connected, script loaded
    os.kill(redis.proc.pid, signal.SIGSTOP)
    try:
        # Clients that give up while their decision is pending: the server must forget
        # them cleanly when the answer (or the deadline) comes.
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", t.port)) as s:
                s.sendall(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n")
        waiting = {}
        limited = threading.Thread(
            target=lambda: waiting.update(answer=t.request("GET", "/index.html")))
        limited.start()
        # While that request waits on the stopped Redis, another route answers at once.
        assert t.request("GET", "/open/index.html")[0] == 200
        assert limited.is_alive()
    finally:
        os.kill(redis.proc.pid, signal.SIGCONT)
    limited.join(timeout=30)
    assert waiting["answer"][0] == 200
    assert t.request("GET", "/index.html")[0] in (200, 429)
    assert t.proc.poll() is None
