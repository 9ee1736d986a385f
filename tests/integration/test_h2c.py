"""h2c Upgrade (RFC 7540 3.2): an HTTP/1.1 request with `Upgrade: h2c` gets 101 and its
answer as HTTP/2 stream 1 on a clear-text port, against curl --http2, nghttp -u and
Python's h2; requests with a body, malformed HTTP2-Settings and TLS stay on HTTP/1.1.
The server is tests/support/http_test_server.cpp (and `tronada static` once)."""
import base64
import json
import socket
import ssl
import subprocess

import h2.config
import h2.connection
import h2.events
import pytest

from conftest import BIN, free_port, wait_for_port

SERVER = "http_test_server"


@pytest.fixture
def server(start_server):
    return start_server(SERVER)


def run(argv):
    return subprocess.run(argv, capture_output=True, timeout=30)


def test_curl_http2_upgrades(server):
    r = run(["curl", "-s", "--http2", "-w", "\n%{http_version}",
             f"http://127.0.0.1:{server.port}/echo?x=1"])
    body, _, version = r.stdout.decode().rpartition("\n")
    assert version == "2"
    echo = json.loads(body)
    assert echo["version"] == "HTTP/2"
    assert echo["uri"] == "/echo?x=1"
    names = {name.lower() for name, _ in echo["headers"]}
    assert not names & {"upgrade", "http2-settings", "connection"}


def test_curl_http2_with_a_body_stays_on_http1(server):
    r = run(["curl", "-s", "--http2", "-d", "hello", "-w", "\n%{http_version}",
             f"http://127.0.0.1:{server.port}/echo"])
    body, _, version = r.stdout.decode().rpartition("\n")
    assert version == "1.1"
    assert json.loads(body)["body"] == "hello"


def test_nghttp_upgrade(server):
    r = run(["nghttp", "-u", "-v", f"http://127.0.0.1:{server.port}/"])
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert "HTTP Upgrade response" in out
    assert "Hello, world" in out


def test_static_command_upgrades(tmp_path):
    (tmp_path / "index.html").write_text("static h2c\n")
    port = free_port()
    proc = subprocess.Popen([str(BIN / "tronada"), "static", str(tmp_path), "-b",
                             f"127.0.0.1:{port}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, proc)
        r = run(["curl", "-s", "--http2", "-w", "\n%{http_version}", f"http://127.0.0.1:{port}/"])
        assert r.stdout.decode() == "static h2c\n\n2"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --- a raw socket and h2 ------------------------------------------------------------------


def upgrade_request(settings, path="/", extra=""):
    return (f"GET {path} HTTP/1.1\r\nHost: localhost\r\n"
            f"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
            f"HTTP2-Settings: {settings}\r\n{extra}\r\n").encode()


def read_head(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head.decode("latin-1"), rest


def read_http1_response(sock):
    head, rest = read_head(sock)
    length = 0
    for line in head.split("\r\n")[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "content-length":
            length = int(v)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return head, rest[:length]


def h2_responses(conn, sock, want, first=b""):
    """Reads until every stream in `want` ended; returns {stream: (headers, body)}.
    `first`: bytes already read (what came in with the 101), handled before reading."""
    out = {sid: [None, b""] for sid in want}
    ended = set()
    while ended != set(want):
        data, first = (first, b"") if first else (sock.recv(65536), b"")
        assert data, "connection closed"
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                out[ev.stream_id][0] = dict(ev.headers)
            elif isinstance(ev, h2.events.DataReceived):
                out[ev.stream_id][1] += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                ended.add(ev.stream_id)
        pending = conn.data_to_send()
        if pending:
            sock.sendall(pending)
    return out


def test_h2_library_upgrade_then_more_streams(server):
    conn = h2.connection.H2Connection(
        config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    settings = conn.initiate_upgrade_connection()  # base64url, as the header carries it
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(upgrade_request(settings.decode() if isinstance(settings, bytes) else settings,
                                     "/echo"))
        head, rest = read_head(sock)
        assert head.startswith("HTTP/1.1 101 ")
        assert "upgrade: h2c" in head.lower()
        sock.sendall(conn.data_to_send())  # our preface and SETTINGS
        # The server's frames, maybe the whole response, can arrive with the 101.
        got = h2_responses(conn, sock, [1], first=rest)
        assert got[1][0][":status"] == "200"
        assert json.loads(got[1][1])["version"] == "HTTP/2"
        # The connection is plain HTTP/2 now.
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "GET"), (":path", "/"), (":scheme", "http"),
                                (":authority", "localhost")], end_stream=True)
        sock.sendall(conn.data_to_send())
        got = h2_responses(conn, sock, [sid])
        assert got[sid][1] == b"Hello, world"


@pytest.mark.parametrize("settings", [
    "!!!not-base64!!!",
    "AAMAAABk+",                                                    # standard alphabet
    "AAMAA",                                                        # impossible length
    base64.urlsafe_b64encode(b"\x00\x02\x00\x00\x00\x02").decode(),  # ENABLE_PUSH = 2
    base64.urlsafe_b64encode(b"\x00\x03\x00").decode(),              # not whole entries
    "A" * 5001,                                                     # long, impossible length
], ids=["not-base64", "standard-alphabet", "bad-length", "push-2", "partial-entry", "long"])
def test_malformed_settings_are_served_over_http1(server, settings):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(upgrade_request(settings))
        head, body = read_http1_response(sock)
        assert head.startswith("HTTP/1.1 200 ")
        assert body == b"Hello, world"
        # Still a working HTTP/1.1 connection.
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        head, body = read_http1_response(sock)
        assert head.startswith("HTTP/1.1 200 ") and body == b"Hello, world"


def test_missing_connection_token_is_not_an_upgrade(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n"
                     b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABk\r\n\r\n")
        head, body = read_http1_response(sock)
        assert head.startswith("HTTP/1.1 200 ")


def test_no_http2_ignores_upgrade(start_server):
    server = start_server(SERVER, "--no-http2")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(upgrade_request("AAMAAABk"))
        head, body = read_http1_response(sock)
        assert head.startswith("HTTP/1.1 200 ") and body == b"Hello, world"


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    key, crt = d / "key.pem", d / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(crt), "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    return crt, key


def test_upgrade_is_ignored_over_tls(start_server, cert):
    server = start_server(SERVER, "--certfile", str(cert[0]), "--keyfile", str(cert[1]))
    ctx = ssl.create_default_context(cafile=str(cert[0]))
    ctx.set_alpn_protocols(["http/1.1"])
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as sock:
            sock.sendall(upgrade_request("AAMAAABk"))
            head, body = read_http1_response(sock)
            assert head.startswith("HTTP/1.1 200 ") and body == b"Hello, world"
