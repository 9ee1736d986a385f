"""TLS on every server command (`--certfile`, `--keyfile`, `--sni-cert`, `--client-ca`,
`--no-http2`, and `[server.tls]` for `serve`), with certificates the test makes with the
openssl command: start-up errors, SNI, client certificates, and what each gateway tells
its app about the scheme (wsgi.url_scheme, FastCGI HTTPS, X-Forwarded-Proto)."""
import http.server
import json
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import BIN, Server, free_port
from test_fastcgi import PHP_DIR, PHP_FPM, PHPFPM

TRONADA = str(BIN / "tronada")


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(d, name):
    key, crt = d / f"{name}.key", d / f"{name}.pem"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
            str(crt), "-days", "2", "-subj", f"/CN={name}")
    return crt, key


def make_cert(d, name, ca, hosts=(), client=False):
    """A certificate for `name` signed by `ca` (crt, key); subjectAltName from hosts."""
    key, csr, crt = d / f"{name}.key", d / f"{name}.csr", d / f"{name}.pem"
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
            "-subj", f"/CN={name}")
    ext = d / f"{name}.ext"
    lines = []
    if hosts:
        lines.append("subjectAltName=" + ",".join(
            (f"IP:{h}" if h[0].isdigit() else f"DNS:{h}") for h in hosts))
    lines.append("extendedKeyUsage=" + ("clientAuth" if client else "serverAuth"))
    ext.write_text("\n".join(lines) + "\n")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
            "-CAcreateserial", "-out", str(crt), "-days", "2", "-extfile", str(ext))
    return crt, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca = make_ca(d, "test-ca")
    client_ca = make_ca(d, "client-ca")
    return {
        "dir": d,
        "ca": ca,
        "default": make_cert(d, "localhost", ca, ("localhost", "127.0.0.1")),
        "other": make_cert(d, "other.test", ca, ("other.test",)),
        "wild": make_cert(d, "wild.test", ca, ("*.wild.test",)),
        "client_ca": client_ca,
        "client": make_cert(d, "alice", client_ca, client=True),
        "stranger": make_cert(d, "mallory", make_ca(d, "rogue-ca"), client=True),
    }


def tls_flags(pki):
    crt, key = pki["default"]
    return ["--certfile", str(crt), "--keyfile", str(key)]


class Proc(Server):
    """conftest's Server whose stop() also returns what the server wrote to stderr."""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        out, err = self.proc.communicate(timeout=15)
        return self.proc.returncode, err.decode()


@pytest.fixture
def run():
    procs = []

    def start(*args):
        port = free_port()
        p = Proc([TRONADA, *args, "-b", f"127.0.0.1:{port}"], port)
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.stop()


def client_context(pki, cert=None):
    ctx = ssl.create_default_context(cafile=str(pki["ca"][0]))
    if cert:
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    return ctx


def https_get(port, path, ctx, server_hostname="localhost", host=None):
    """GET over TLS with HTTP/1.1; returns (status, headers dict, body, peer cert subject CN)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_hostname) as s:
            cn = dict(x[0] for x in s.getpeercert()["subject"])["commonName"]
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host or server_hostname}\r\n"
                      f"Connection: close\r\n\r\n".encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding") == "chunked":
        out, rest = b"", body
        while rest:
            size, _, rest = rest.partition(b"\r\n")
            n = int(size, 16)
            if n == 0:
                break
            out, rest = out + rest[:n], rest[n + 2:]
        body = out
    return int(lines[0].split()[1]), headers, body, cn


def curl(*args):
    return subprocess.run(["curl", "-s", "--max-time", "10", *args], capture_output=True,
                          timeout=20)


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "site"
    root.mkdir()
    (root / "index.html").write_text("hello over tls\n")
    return root


# --- start-up errors --------------------------------------------------------------------


def start_fails(args, pki):
    port = free_port()
    r = subprocess.run([TRONADA, *args, "-b", f"127.0.0.1:{port}"], capture_output=True,
                       timeout=20)
    # Nothing may have been bound: the port is still free.
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
    return r.returncode, r.stderr.decode()


def test_missing_cert_file_stops_before_binding(pki, site, tmp_path):
    code, err = start_fails(["static", str(site), "--certfile", str(tmp_path / "nope.pem"),
                             "--keyfile", str(pki["default"][1])], pki)
    assert code == 1
    assert "nope.pem" in err


def test_malformed_cert_stops_before_binding(pki, site, tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    code, err = start_fails(["static", str(site), "--certfile", str(bad), "--keyfile",
                             str(pki["default"][1])], pki)
    assert code == 1
    assert "bad.pem" in err


def test_mismatched_key_stops_before_binding(pki, site):
    code, err = start_fails(["static", str(site), "--certfile", str(pki["default"][0]),
                             "--keyfile", str(pki["other"][1])], pki)
    assert code == 1
    assert "localhost.pem" in err or "other.test.key" in err
    assert "match" in err


def test_mismatched_sni_cert_stops_before_binding(pki, site):
    code, err = start_fails(["static", str(site), *tls_flags(pki), "--sni-cert",
                             f"other.test={pki['other'][0]},{pki['default'][1]}"], pki)
    assert code == 1
    assert "other.test.pem" in err or "localhost.key" in err


def test_half_a_pair_is_a_usage_error(pki, site):
    code, err = start_fails(["static", str(site), "--certfile", str(pki["default"][0])], pki)
    assert code == 2
    assert "--keyfile" in err
    code, err = start_fails(["static", str(site), "--sni-cert", "a.test=a.pem,a.key"], pki)
    assert code == 2
    assert "--certfile" in err


def test_bad_sni_syntax_is_a_usage_error(pki, site):
    code, err = start_fails(["static", str(site), *tls_flags(pki), "--sni-cert", "a.pem"], pki)
    assert code == 2
    assert "NAME=CERT,KEY" in err


def test_serve_config_with_a_bad_key_stops_before_binding(pki, site, tmp_path):
    cfg = tmp_path / "tronada.toml"
    cfg.write_text(f'[server.tls]\ncert = "{pki["default"][0]}"\nkey = "{pki["other"][1]}"\n'
                   f'[[route]]\n[route.static]\nroot = "{site}"\n')
    code, err = start_fails(["serve", "-c", str(cfg)], pki)
    assert code == 1
    assert "match" in err
    r = subprocess.run([TRONADA, "check", "-c", str(cfg)], capture_output=True, timeout=20)
    assert r.returncode == 1


# --- serving ----------------------------------------------------------------------------


def test_static_over_tls_h2_and_http1(run, pki, site):
    server = run("static", str(site), *tls_flags(pki))
    ca = str(pki["ca"][0])
    r = curl("--cacert", ca, "-w", "\n%{http_version}", f"https://localhost:{server.port}/",
             "--resolve", f"localhost:{server.port}:127.0.0.1")
    assert r.stdout.decode() == "hello over tls\n\n2"
    r = curl("--http1.1", "--cacert", ca, "-w", "\n%{http_version}",
             f"https://localhost:{server.port}/", "--resolve",
             f"localhost:{server.port}:127.0.0.1")
    assert r.stdout.decode() == "hello over tls\n\n1.1"


def test_no_http2_offers_only_http1(run, pki, site):
    server = run("static", str(site), *tls_flags(pki), "--no-http2")
    r = curl("--cacert", str(pki["ca"][0]), "-w", "\n%{http_version}",
             f"https://localhost:{server.port}/", "--resolve",
             f"localhost:{server.port}:127.0.0.1")
    assert r.stdout.decode() == "hello over tls\n\n1.1"


def test_sni_picks_the_certificate(run, pki, site):
    server = run("static", str(site), *tls_flags(pki),
                 "--sni-cert", f"other.test={pki['other'][0]},{pki['other'][1]}",
                 "--sni-cert", f"*.wild.test={pki['wild'][0]},{pki['wild'][1]}")
    ctx = client_context(pki)
    assert https_get(server.port, "/", ctx, "localhost")[3] == "localhost"
    status, _, body, cn = https_get(server.port, "/", ctx, "other.test")
    assert (status, body, cn) == (200, b"hello over tls\n", "other.test")
    assert https_get(server.port, "/", ctx, "www.wild.test")[3] == "wild.test"
    # A name no certificate has gets the default one, which the client then rejects.
    with pytest.raises(ssl.SSLCertVerificationError):
        https_get(server.port, "/", ctx, "unknown.test")


def test_client_certificates(run, pki, site):
    server = run("static", str(site), *tls_flags(pki), "--client-ca", str(pki["client_ca"][0]))
    status, _, body, _ = https_get(server.port, "/", client_context(pki, pki["client"]))
    assert (status, body) == (200, b"hello over tls\n")
    for cert in (None, pki["stranger"]):
        with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
            # TLS 1.3 reports the refusal on the first read after the handshake.
            https_get(server.port, "/", client_context(pki, cert))


def test_refused_body_ends_at_once_with_close_notify(run, pki, site):
    """A body over the limit gets 413 before it was read. The lingering close that follows
    sends close_notify and FIN right after the response, as over plain TCP, so the client
    reads the end now, not when the linger time (2 s by default) is up and the server
    closes."""
    server = run("static", str(site), *tls_flags(pki), "--max-body-size", "1KiB")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        with client_context(pki).wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2000\r\n\r\n" +
                      b"x" * 2000)
            start = time.monotonic()
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            elapsed = time.monotonic() - start
    assert data.startswith(b"HTTP/1.1 413 "), data[:40]
    assert b"Connection: close\r\n" in data
    assert elapsed < 1.5, f"the end came only with the linger timeout ({elapsed:.2f} s)"


def test_serve_tls_table_with_sni_and_flags_override(run, pki, site, tmp_path):
    cfg = tmp_path / "tronada.toml"
    cfg.write_text(
        f'[server.tls]\ncert = "{pki["other"][0]}"\nkey = "{pki["other"][1]}"\n'
        f'[server.tls.sni."other.test"]\ncert = "{pki["other"][0]}"\nkey = "{pki["other"][1]}"\n'
        f'[[route]]\n[route.static]\nroot = "{site}"\n')
    r = subprocess.run([TRONADA, "check", "-c", str(cfg)], capture_output=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert '[server.tls.sni."other.test"]' in r.stdout.decode()
    # The flags replace the default certificate; the SNI one comes from the file.
    server = run("serve", "-c", str(cfg), *tls_flags(pki), "--access-log", "off")
    ctx = client_context(pki)
    assert https_get(server.port, "/", ctx, "localhost")[3] == "localhost"
    assert https_get(server.port, "/", ctx, "other.test")[3] == "other.test"


# --- what the apps see ------------------------------------------------------------------


SCHEME_APP = '''
import json
def app(environ, start_response):
    body = json.dumps({"scheme": environ["wsgi.url_scheme"],
                       "https": environ.get("HTTPS")}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
'''


def test_wsgi_url_scheme_is_https(run, pki, tmp_path):
    (tmp_path / "scheme_app.py").write_text(SCHEME_APP)
    server = run("wsgi", "scheme_app:app", "--pythonpath", str(tmp_path), *tls_flags(pki))
    status, _, body, _ = https_get(server.port, "/", client_context(pki))
    assert status == 200
    assert json.loads(body)["scheme"] == "https"


@pytest.mark.skipif(PHP_FPM is None, reason="php-fpm is not installed")
def test_fastcgi_https_on(run, pki, tmp_path):
    fpm = PHPFPM(tmp_path)
    try:
        server = run("fastcgi", "--to", f"unix:{fpm.sock}", "--root", str(PHP_DIR),
                     *tls_flags(pki))
        status, _, body, _ = https_get(server.port, "/server.php", client_context(pki))
        assert status == 200
        params = json.loads(body)
        assert params["HTTPS"] == "on"
        assert params["REQUEST_SCHEME"] in ("https", None)
    finally:
        fpm.stop()


class EchoHeaders(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_proxy_sends_x_forwarded_proto_https(run, pki):
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), EchoHeaders)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    try:
        server = run("proxy", "--to", f"http://127.0.0.1:{upstream.server_address[1]}",
                     *tls_flags(pki))
        status, _, body, _ = https_get(server.port, "/", client_context(pki))
        assert status == 200
        assert json.loads(body)["x-forwarded-proto"] == "https"
    finally:
        upstream.shutdown()
        upstream.server_close()
