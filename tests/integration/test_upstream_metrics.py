"""Per-upstream proxy metrics (issue 19) on the admin listener, summed by the master over
`workers = 2`: tries by upstream and outcome match what the clients saw, retries match
the refused connects that caused them, health and connection gauges, the connect and
response histograms, and DNS discovery counters. Parsed with the real Prometheus parser
(python3-prometheus-client). Real upstreams (apps/upstream.py) on loopback."""
import concurrent.futures
import signal
import subprocess

import pytest
from prometheus_client.openmetrics.parser import \
    text_string_to_metric_families as parse_openmetrics

from conftest import BIN, free_port, wait_for_port
from test_operations import get, samples, scrape, wait_until
from test_proxy import APPS, PYTHON, Proc

TRONADA = str(BIN / "tronada")


@pytest.fixture
def front(tmp_path):
    procs = []

    def start():
        ups = {}
        for name in ("a", "b"):
            port = free_port()
            procs.append(Proc([PYTHON, str(APPS / "upstream.py"), str(port), name], port))
            ups[name] = f"http://127.0.0.1:{port}"
        ups["dead"] = f"http://127.0.0.1:{free_port()}"  # nothing listens: refused
        port, admin = free_port(), free_port()
        config = tmp_path / "tronada.toml"
        config.write_text(f"""
[server]
bind = ["127.0.0.1:{port}"]
admin = "127.0.0.1:{admin}"
workers = 2
access_log = "off"

[[route]]
path = "/dns/"
[route.proxy]
to = ["{ups['a'].replace('127.0.0.1', 'localhost')}"]
resolve_interval = "1s"

[[route]]
path = "/"
[route.proxy]
to = ["{ups['a']}", "{ups['b']}", "{ups['dead']}"]
max_fails = 0
""")
        log = open(tmp_path / "serve.log", "wb")
        proc = subprocess.Popen([TRONADA, "serve", "-c", str(config)], stdout=log,
                                stderr=subprocess.STDOUT)
        procs.append(proc)
        wait_for_port(port, proc)
        wait_for_port(admin, proc)
        wait_until(lambda: get(admin, "/readyz")[0] == 200, "ready")
        return port, admin, ups

    yield start
    for p in procs:
        if isinstance(p, Proc):
            p.stop(signal.SIGKILL)
        elif p.poll() is None:
            p.kill()
            p.wait()


def value(metrics, name, **labels):
    return metrics.get((name, frozenset(labels.items())))


def test_upstream_tries_retries_and_gauges_summed_over_two_workers(front):
    port, admin, ups = front()
    seen = {"a": 0, "b": 0}

    def one(_):
        status, _, body = get(port, "/whoami")
        assert status == 200
        return body.decode()

    # New connections in parallel, so both workers take some.
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for name in pool.map(one, range(120)):
            seen[name] += 1
    assert seen["a"] and seen["b"]

    def tries(m, up, outcome):
        return value(m, "tronada_upstream_requests_total", route="/", upstream=ups[up],
                     outcome=outcome)

    def matches():
        m = samples(scrape(admin)[1])
        ok = all(tries(m, up, "response") == n for up, n in seen.items())
        return m if ok and value(m, "tronada_upstream_healthy", route="/",
                                 upstream=ups["a"]) is not None else None

    m = wait_until(matches, f"tries per upstream {seen}")
    refused = tries(m, "dead", "connect_error")
    assert refused > 0  # round robin sends about a third of the first tries there
    assert tries(m, "dead", "response") == 0
    assert sum(tries(m, up, o) for up in ("a", "b") for o in ("connect_error", "timeout",
                                                            "error")) == 0
    # Every refused connect sent its request on to a or b.
    retries = sum(value(m, "tronada_upstream_retries_total", route="/", upstream=ups[up])
                  for up in ("a", "b", "dead"))
    assert retries == refused
    for up in ("a", "b"):
        base = {"route": "/", "upstream": ups[up]}
        assert value(m, "tronada_upstream_connect_duration_seconds_count", **base) == seen[up]
        assert value(m, "tronada_upstream_response_duration_seconds_count", **base) == seen[up]
        assert value(m, "tronada_upstream_response_duration_seconds_bucket",
                     le="+Inf", **base) == seen[up]
        assert value(m, "tronada_upstream_response_duration_seconds_sum", **base) > 0
        assert value(m, "tronada_upstream_healthy", **base) == 1
        assert value(m, "tronada_upstream_connections", state="busy", **base) >= 0
        assert value(m, "tronada_upstream_connections", state="idle", **base) >= 0
        assert value(m, "tronada_upstream_dns_lookups_total", **base) == 0
    # Passive marks are off (max_fails = 0): the dead one still counts as up.
    assert value(m, "tronada_upstream_healthy", route="/", upstream=ups["dead"]) == 1
    # Kept-alive connections to the upstreams went back to the pools.
    wait_until(lambda: sum(
        value(samples(scrape(admin)[1]), "tronada_upstream_connections", route="/",
              upstream=ups[up], state="idle") or 0 for up in ("a", "b")) > 0,
        "idle pooled connections")

    # DNS discovery of the name in /dns/'s upstream (localhost, from /etc/hosts).
    name = ups["a"].replace("127.0.0.1", "localhost")
    dns = wait_until(lambda: (lambda m: m if (value(
        m, "tronada_upstream_dns_lookups_total", route="/dns/", upstream=name) or 0) >= 2
        and (value(m, "tronada_upstream_dns_addresses", route="/dns/", upstream=name) or 0) >= 1
        else None)(samples(scrape(admin)[1])), "DNS lookups counted")
    assert value(dns, "tronada_upstream_dns_failures_total", route="/dns/", upstream=name) == 0

    # The strict OpenMetrics parser takes the new families too.
    _, text = scrape(admin, "application/openmetrics-text; version=1.0.0")
    om = samples(text, parse_openmetrics)
    assert om[("tronada_upstream_requests_total", frozenset(
        {"route": "/", "upstream": ups["a"], "outcome": "response"}.items()))] >= seen["a"]


def test_health_gauge_turns_0_for_a_failing_upstream(tmp_path):
    up_port = free_port()
    up = Proc([PYTHON, str(APPS / "upstream.py"), str(up_port), "a"], up_port)
    port, admin = free_port(), free_port()
    config = tmp_path / "tronada.toml"
    url = f"http://127.0.0.1:{up_port}"
    config.write_text(f"""
[server]
bind = ["127.0.0.1:{port}"]
admin = "127.0.0.1:{admin}"
workers = 2
access_log = "off"

[[route]]
path = "/"
[route.proxy]
to = ["{url}"]
health_uri = "/health"
health_interval = "200ms"
""")
    proc = subprocess.Popen([TRONADA, "serve", "-c", str(config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc)
        wait_for_port(admin, proc)

        def healthy():
            return value(samples(scrape(admin)[1]), "tronada_upstream_healthy", route="/",
                         upstream=url)

        wait_until(lambda: healthy() == 1, "healthy")
        get(up_port, "/sick")
        wait_until(lambda: healthy() == 0, "unhealthy")
        get(up_port, "/well")
        wait_until(lambda: healthy() == 1, "healthy again")
    finally:
        proc.kill()
        proc.wait()
        up.stop(signal.SIGKILL)
