"""WSGI thread and queue metrics (issue 19) on the admin listener, summed by the master
over `workers = 2`: every call's queue wait is counted once, and the thread gauges add up
to the threads configured. Parsed with the real Prometheus parser."""
import concurrent.futures
import subprocess

from conftest import BIN, free_port, wait_for_port
from test_operations import get, samples, scrape, wait_until
from test_proxy import APPS

TRONADA = str(BIN / "tronada")


def test_wsgi_queue_and_threads_summed_over_two_workers(tmp_path):
    port, admin = free_port(), free_port()
    config = tmp_path / "tronada.toml"
    config.write_text(f"""
[server]
bind = ["127.0.0.1:{port}"]
admin = "127.0.0.1:{admin}"
workers = 2
access_log = "off"

[[route]]
path = "/app"
wsgi = {{ app = "pep3333:raw", pythonpath = ["{APPS}"], threads = 3 }}
""")
    proc = subprocess.Popen([TRONADA, "serve", "-c", str(config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc)
        wait_for_port(admin, proc)
        pids = set()

        def one(_):
            status, _, body = get(port, "/app/pid")
            assert status == 200
            return body.decode()

        sent = 0
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            while sent < 400 and (sent < 60 or len(pids) < 2):
                pids.update(pool.map(one, range(20)))
                sent += 20
        assert len(pids) == 2, "both workers served"
        app = frozenset({"app": "pep3333:raw"}.items())

        def key(name, **labels):
            return (name, app | frozenset(labels.items()))

        def settled():
            m = samples(scrape(admin)[1])
            return m if m.get(key("tronada_wsgi_queue_wait_seconds_count")) == sent else None

        m = wait_until(settled, f"{sent} queue waits counted")
        assert m[key("tronada_wsgi_queue_wait_seconds_bucket", le="+Inf")] == sent
        assert m[key("tronada_wsgi_threads", state="busy")] == 0
        assert m[key("tronada_wsgi_threads", state="idle")] == 6
        assert m[key("tronada_wsgi_queue_length")] == 0
        assert m[key("tronada_wsgi_rejected_total")] == 0
    finally:
        proc.kill()
        proc.wait()
