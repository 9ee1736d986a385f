"""TLS handshake counters on the admin listener (issue 19): a handshake that completes is
counted once as ok, a plaintext client on the TLS port as failed."""
import socket
import subprocess

from conftest import BIN, free_port, wait_for_port
from test_operations import samples, scrape, wait_until
from test_reload import tls_connection, get
from test_tls_cli import make_ca, make_cert

TRONADA = str(BIN / "tronada")


def test_handshakes_ok_and_failed_are_counted(tmp_path):
    ca = make_ca(tmp_path, "metrics-ca")
    crt, key = make_cert(tmp_path, "server", ca, ("localhost", "127.0.0.1"))
    pki = {"ca": ca}
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("hi\n")
    port, admin = free_port(), free_port()
    proc = subprocess.Popen([TRONADA, "static", str(site), "-b", f"127.0.0.1:{port}",
                             "--admin", f"127.0.0.1:{admin}", "--access-log", "off",
                             "--certfile", str(crt), "--keyfile", str(key)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc)
        wait_for_port(admin, proc)
        # wait_for_port's own probes connect and close without a handshake: failures.
        before = samples(scrape(admin)[1])
        ok0 = before[("tronada_tls_handshakes_total", frozenset({"result": "ok"}.items()))]
        failed0 = before[("tronada_tls_handshakes_total",
                          frozenset({"result": "failed"}.items()))]
        conn = tls_connection(port, pki)
        assert get(conn, "/index.html")[0] == 200
        conn.close()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # plaintext on the TLS port
            try:
                s.recv(100)
            except OSError:
                pass

        def counted():
            m = samples(scrape(admin)[1])
            ok = m[("tronada_tls_handshakes_total", frozenset({"result": "ok"}.items()))]
            failed = m[("tronada_tls_handshakes_total", frozenset({"result": "failed"}.items()))]
            # At least: a port probe's close may land after `before` was read.
            return (ok, failed) if ok == ok0 + 1 and failed >= failed0 + 1 else None

        wait_until(counted, "one handshake ok and one failed")
    finally:
        proc.kill()
        proc.wait()
