"""FastCGI responder metrics (issue 19) on the admin listener: tries at php-fpm by
route, upstream (the address as configured) and outcome match what the clients saw,
summed by the master over `workers = 2`; the connect and response histograms count every
try that got there; the pool's idle and busy connections; a dead responder's connect
errors; and the pool's 503s (max_wait) carry Retry-After and count as `rejected`. Parsed
with the real Prometheus parser (python3-prometheus-client)."""
import concurrent.futures
import subprocess
import threading

from conftest import BIN, free_port, wait_for_port
from test_fastcgi import PHP_DIR, PHPFPM, pytestmark, request, stop  # noqa: F401
from test_operations import get, samples, scrape, wait_until

TRONADA = str(BIN / "tronada")


def key(name, **labels):
    return (name, frozenset(labels.items()))


def test_tries_histograms_and_gauges_summed_over_two_workers(tmp_path):
    fpm = PHPFPM(tmp_path, children=4)
    dead = f"unix:{tmp_path}/nobody.sock"
    port, admin = free_port(), free_port()
    config = tmp_path / "tronada.toml"
    config.write_text(f"""
[server]
bind = ["127.0.0.1:{port}"]
admin = "127.0.0.1:{admin}"
workers = 2
access_log = "off"

[[route]]
host = "dead.test"
path = "/"
fastcgi = {{ to = "{dead}", root = "{PHP_DIR}" }}

[[route]]
path = "/"
fastcgi = {{ to = "unix:{fpm.sock}", root = "{PHP_DIR}", max_connections = 2 }}
""")
    proc = subprocess.Popen([TRONADA, "serve", "-c", str(config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc)
        wait_for_port(admin, proc)
        wait_until(lambda: get(admin, "/readyz")[0] == 200, "ready")
        sent = 60
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            statuses = list(pool.map(lambda _: request(port, "GET", "/hello.php")[0],
                                     range(sent)))
        assert statuses == [200] * sent
        # Static files never reach the responder.
        assert request(port, "GET", "/plain.txt")[0] == 200
        dead_statuses = [request(port, "GET", "/hello.php", headers={"Host": "dead.test"})[0]
                         for _ in range(3)]
        assert dead_statuses == [502] * 3

        up = {"route": "/", "upstream": f"unix:{fpm.sock}"}
        down = {"route": "dead.test/", "upstream": dead}

        def settled():
            m = samples(scrape(admin)[1])
            done = m.get(key("tronada_upstream_requests_total", outcome="response", **up))
            # Both workers publish their gauges once a second.
            idle = m.get(key("tronada_upstream_connections", state="idle", **up))
            return m if done == sent and idle is not None and idle >= 1 else None

        m = wait_until(settled, f"{sent} responses counted")
        for outcome in ("connect_error", "timeout", "error", "rejected"):
            assert m[key("tronada_upstream_requests_total", outcome=outcome, **up)] == 0, outcome
        assert m[key("tronada_upstream_retries_total", **up)] == 0
        assert m[key("tronada_upstream_connect_duration_seconds_count", **up)] == sent
        assert m[key("tronada_upstream_connect_duration_seconds_bucket", le="+Inf", **up)] == sent
        assert m[key("tronada_upstream_response_duration_seconds_count", **up)] == sent
        assert m[key("tronada_upstream_response_duration_seconds_sum", **up)] > 0
        # Kept-alive connections wait in the pools; none is busy now. At most
        # max_connections per worker.
        assert 1 <= m[key("tronada_upstream_connections", state="idle", **up)] <= 4
        assert m[key("tronada_upstream_connections", state="busy", **up)] == 0
        # Nothing tracks a responder's health: no healthy gauge is made up for it.
        assert key("tronada_upstream_healthy", **up) not in m
        assert m[key("tronada_upstream_requests_total", outcome="connect_error", **down)] == 3
        assert m[key("tronada_upstream_requests_total", outcome="response", **down)] == 0
        assert m[key("tronada_upstream_connect_duration_seconds_count", **down)] == 0
        assert m[key("tronada_http_requests_total", route="/", backend="fastcgi",
                     status="2xx")] == sent + 1
    finally:
        stop(proc)
        fpm.stop()


def test_pool_refusals_carry_retry_after_and_count_as_rejected(tmp_path):
    """`tronada fastcgi --max-conns 1 --max-wait 300ms`: while one slow request holds the
    only connection, three more wait past max_wait and get 503 with Retry-After, as
    WSGI's --max-wait answers."""
    fpm = PHPFPM(tmp_path, children=4)
    port, admin = free_port(), free_port()
    to = f"unix:{fpm.sock}"
    proc = subprocess.Popen(
        [TRONADA, "fastcgi", "--to", to, "--root", str(PHP_DIR), "-b", f"127.0.0.1:{port}",
         "--admin", f"127.0.0.1:{admin}", "--max-conns", "1", "--max-wait", "300ms",
         "--access-log", "off"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = []
    lock = threading.Lock()

    def client():
        status, headers, _ = request(port, "GET", "/sleep.php?s=1")
        retry_after = next((v for k, v in headers if k.lower() == "retry-after"), None)
        with lock:
            results.append((status, retry_after))

    try:
        wait_for_port(port, proc)
        wait_for_port(admin, proc)
        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert sorted(results) == [(200, None), (503, "1"), (503, "1"), (503, "1")], results
        up = {"route": "/", "upstream": to}

        def settled():
            m = samples(scrape(admin)[1])
            busy = m.get(key("tronada_upstream_connections", state="busy", **up))
            return m if busy == 0 else None

        m = wait_until(settled, "the gauges published")
        assert m[key("tronada_upstream_requests_total", outcome="response", **up)] == 1
        assert m[key("tronada_upstream_requests_total", outcome="rejected", **up)] == 3
        assert m[key("tronada_upstream_requests_total", outcome="timeout", **up)] == 0
        assert m[key("tronada_upstream_connect_duration_seconds_count", **up)] == 1
        assert m[key("tronada_upstream_response_duration_seconds_sum", **up)] >= 1
        assert m[key("tronada_upstream_connections", state="idle", **up)] == 1
        assert m[key("tronada_http_requests_total", route="/", backend="fastcgi",
                     status="5xx")] == 3
        stop(proc)  # the pool outlives the metrics region: a clean exit all the same
        assert proc.returncode == 0
    finally:
        stop(proc)
        fpm.stop()


def test_read_timeout_counts_as_timeout(tmp_path):
    fpm = PHPFPM(tmp_path, children=2)
    port, admin = free_port(), free_port()
    to = f"unix:{fpm.sock}"
    proc = subprocess.Popen(
        [TRONADA, "fastcgi", "--to", to, "--root", str(PHP_DIR), "-b", f"127.0.0.1:{port}",
         "--admin", f"127.0.0.1:{admin}", "--read-timeout", "0.5", "--access-log", "off"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc)
        wait_for_port(admin, proc)
        assert request(port, "GET", "/sleep.php?s=2")[0] == 504
        assert request(port, "GET", "/hello.php")[0] == 200
        up = {"route": "/", "upstream": to}
        m = samples(scrape(admin)[1])
        assert m[key("tronada_upstream_requests_total", outcome="timeout", **up)] == 1
        assert m[key("tronada_upstream_requests_total", outcome="response", **up)] == 1
        # The timed-out try got a connection: its connect time is counted, not a response.
        assert m[key("tronada_upstream_connect_duration_seconds_count", **up)] == 2
        assert m[key("tronada_upstream_response_duration_seconds_count", **up)] == 1
        stop(proc)
        assert proc.returncode == 0
    finally:
        stop(proc)
        fpm.stop()
