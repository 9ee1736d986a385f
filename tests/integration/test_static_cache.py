"""`tronada static` and `[[route]] static`: the open-file cache under changing files,
large files with sendfile (ranges, slow readers, clients that vanish, files truncated
under a download), precompressed variants, over HTTP/1.1, h2c and h2 over TLS."""
import hashlib
import os
import socket
import subprocess
import time

import pytest

from conftest import BIN, Server, free_port

BIG = 8 * 1024 * 1024


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "site"
    (root / "d").mkdir(parents=True)
    (root / "small.txt").write_text("hello world\n")
    (root / "big.bin").write_bytes(os.urandom(BIG))
    (root / "app.js").write_text("console.log('plain')\n")
    (root / "app.js.br").write_bytes(b"BROTLI-BYTES")
    (root / "app.js.gz").write_bytes(b"GZIP-BYTES")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "x.txt").write_text("outside the root\n")
    return root


def start(site, *flags):
    port = free_port()
    return Server([str(BIN / "tronada"), "static", str(site), "-b", f"127.0.0.1:{port}",
                   "--access-log", "off", *flags], port)


@pytest.fixture
def servers():
    started = []
    yield started
    for s in started:
        assert s.stop() == 0


def get(port, path, headers=(), http="--http1.1", scheme="http"):
    """curl: (status, headers dict with lowercase names, body bytes, curl's exit code)."""
    argv = ["curl", "-s", "-k", http, "--max-time", "20", "-D", "-", "-o", "-"]
    for h in headers:
        argv += ["-H", h]
    p = subprocess.run(argv + [f"{scheme}://127.0.0.1:{port}{path}"], capture_output=True)
    raw = p.stdout
    # Interim 101 heads (h2c upgrade) come first: skip to the last head.
    head, body = b"", raw
    while body.startswith(b"HTTP/"):
        head, _, body = body.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0] else 0
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    return status, fields, body, p.returncode


def text(port, path):
    status, _, body, _ = get(port, path)
    return status, body.decode()


def make_changes(site, tmp_path):
    """The changes a cache must notice, applied to the files `prepare` made."""
    (site / "rewrite.txt").write_text("rewritten in place\n")
    (site / "next.txt").write_text("replaced by rename\n")
    os.rename(site / "next.txt", site / "rename.txt")
    os.truncate(site / "trunc.txt", 3)
    os.remove(site / "gone.txt")
    os.rename(site / "dir", tmp_path / "old-dir")
    (tmp_path / "elsewhere" / "f.txt").write_text("outside the root\n")
    os.symlink(tmp_path / "elsewhere", site / "dir")


def prepare(site):
    for name in ("rewrite.txt", "rename.txt", "trunc.txt", "gone.txt"):
        (site / name).write_text(f"original {name}\n")
    (site / "dir").mkdir()
    (site / "dir" / "f.txt").write_text("original f.txt\n")


ORIGINAL = {"/rewrite.txt": "original rewrite.txt\n", "/rename.txt": "original rename.txt\n",
            "/trunc.txt": "original trunc.txt\n", "/gone.txt": "original gone.txt\n",
            "/dir/f.txt": "original f.txt\n"}
CHANGED = {"/rewrite.txt": (200, "rewritten in place\n"), "/rename.txt": (200, "replaced by rename\n"),
           "/trunc.txt": (200, "ori"), "/gone.txt": (404, None), "/dir/f.txt": (403, None)}


def check_changed(port):
    for path, (status, body) in CHANGED.items():
        got = text(port, path)
        assert got[0] == status, path
        if body is not None:
            assert got[1] == body, path
        assert "outside" not in got[1]


def test_interval_zero_sees_every_change_at_once(site, tmp_path, servers):
    prepare(site)
    s = start(site, "--cache-valid", "0")
    servers.append(s)
    for path, body in ORIGINAL.items():
        assert text(s.port, path) == (200, body)
    make_changes(site, tmp_path)
    check_changed(s.port)


def test_changes_are_seen_after_the_interval(site, tmp_path, servers):
    prepare(site)
    interval = 4.0
    s = start(site, "--cache-valid", f"{int(interval)}s")
    servers.append(s)
    first = time.monotonic()
    for path, body in ORIGINAL.items():
        assert text(s.port, path) == (200, body)
    make_changes(site, tmp_path)
    # Within the interval the cache answers as it found the files (unless this machine
    # was so slow that the interval ran out already).
    if time.monotonic() - first < interval - 1:
        for path, body in ORIGINAL.items():
            assert text(s.port, path) == (200, body), path
    last = time.monotonic()
    time.sleep(max(0.0, last + interval + 0.5 - time.monotonic()))
    check_changed(s.port)


def server_cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks


def read_response(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before the head"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    length = int(fields["content-length"])
    while len(body) < length:
        chunk = sock.recv(1 << 20)
        assert chunk, "connection closed mid-body"
        body += chunk
    return lines[0], fields, body


def test_range_of_a_large_file_to_a_slow_reader(site, servers):
    s = start(site)
    servers.append(s)
    first, last = 1000, BIG - 1001
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.connect(("127.0.0.1", s.port))
    sock.sendall(f"GET /big.bin HTTP/1.1\r\nHost: x\r\nRange: bytes={first}-{last}\r\n\r\n".encode())
    time.sleep(0.5)  # the socket buffers fill up; the rest waits for us
    before = server_cpu_ticks(s.proc.pid)
    time.sleep(2.0)
    spent = server_cpu_ticks(s.proc.pid) - before
    # Waiting for a reader costs nothing: a server polling the socket would burn the
    # whole two seconds (200 ticks).
    assert spent <= 20, f"server used {spent} ticks while the client read nothing"
    status, fields, body = read_response(sock)
    sock.close()
    assert status == "HTTP/1.1 206 Partial Content"
    assert fields["content-range"] == f"bytes {first}-{last}/{BIG}"
    data = (site / "big.bin").read_bytes()
    assert hashlib.sha256(body).digest() == hashlib.sha256(data[first:last + 1]).digest()


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_clients_that_vanish_mid_download_give_their_files_back(site, servers):
    s = start(site)
    servers.append(s)
    status, _, body, _ = get(s.port, "/big.bin")  # the cache opens the file once
    assert status == 200 and len(body) == BIG
    baseline = open_fds(s.proc.pid)
    for i in range(20):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        sock.connect(("127.0.0.1", s.port))
        sock.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.recv(65536)
        if i % 2:
            # A reset, as from a killed client.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()
    deadline = time.monotonic() + 15
    while open_fds(s.proc.pid) > baseline and time.monotonic() < deadline:
        time.sleep(0.1)
    assert open_fds(s.proc.pid) == baseline
    assert text(s.port, "/small.txt") == (200, "hello world\n")


def test_file_truncated_under_a_download_ends_it_instead_of_hanging(site, servers):
    s = start(site, "--cache-valid", "1h")
    servers.append(s)
    assert get(s.port, "/big.bin")[0] == 200
    os.truncate(site / "big.bin", 1024 * 1024)  # the cache still believes 8 MiB
    started = time.monotonic()
    status, fields, body, code = get(s.port, "/big.bin")
    assert status == 200 and fields["content-length"] == str(BIG)
    assert code == 18  # curl: "partial file", the connection closed short
    assert len(body) == 1024 * 1024
    assert time.monotonic() - started < 15
    # HTTP/2 resets the stream instead.
    p = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "--max-time", "20", "-o",
                        os.devnull, f"http://127.0.0.1:{s.port}/big.bin"])
    assert p.returncode in (16, 18, 92)  # HTTP/2 stream error / partial file


def test_precompressed_variants(site, servers):
    s = start(site, "--precompressed")
    servers.append(s)
    status, plain, body, _ = get(s.port, "/app.js")
    assert body == b"console.log('plain')\n" and "content-encoding" not in plain
    assert plain["vary"] == "Accept-Encoding"
    status, br, body, _ = get(s.port, "/app.js", ["Accept-Encoding: gzip, br"])
    assert body == b"BROTLI-BYTES" and br["content-encoding"] == "br"
    assert br["vary"] == "Accept-Encoding"
    assert br["content-type"] == "text/javascript; charset=utf-8"
    status, gz, body, _ = get(s.port, "/app.js", ["Accept-Encoding: gzip"])
    assert body == b"GZIP-BYTES" and gz["content-encoding"] == "gzip"
    assert len({plain["etag"], br["etag"], gz["etag"]}) == 3
    assert get(s.port, "/app.js", ["Accept-Encoding: br", f"If-None-Match: {br['etag']}"])[0] == 304
    assert get(s.port, "/app.js", ["Accept-Encoding: br", f"If-None-Match: {gz['etag']}"])[0] == 200
    # The same over h2c.
    status, h2, body, _ = get(s.port, "/app.js", ["Accept-Encoding: br"], http="--http2-prior-knowledge")
    assert status == 200 and body == b"BROTLI-BYTES" and h2["content-encoding"] == "br"
    # Without the flag the siblings are just files.
    s2 = start(site)
    servers.append(s2)
    status, fields, body, _ = get(s2.port, "/app.js", ["Accept-Encoding: br"])
    assert body == b"console.log('plain')\n" and "vary" not in fields


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(d / "key.pem"), "-out", str(d / "cert.pem"), "-days", "2", "-subj",
                    "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return d / "cert.pem", d / "key.pem"


@pytest.mark.parametrize("mode", ["http1", "h2c-prior", "h2c-upgrade", "tls-http1", "tls-h2"])
def test_every_protocol_serves_small_large_and_ranges(site, servers, cert, mode):
    tls = mode.startswith("tls")
    flags = ["--certfile", str(cert[0]), "--keyfile", str(cert[1])] if tls else []
    s = start(site, *flags)
    servers.append(s)
    http = {"http1": "--http1.1", "h2c-prior": "--http2-prior-knowledge", "h2c-upgrade": "--http2",
            "tls-http1": "--http1.1", "tls-h2": "--http2"}[mode]
    scheme = "https" if tls else "http"
    data = (site / "big.bin").read_bytes()
    for _ in range(2):  # a miss, then a hit
        status, _, body, code = get(s.port, "/small.txt", http=http, scheme=scheme)
        assert (status, body, code) == (200, b"hello world\n", 0)
        if mode == "h2c-upgrade":
            # curl 7.88 cannot take more than 32 KiB of frames arriving with the 101
            # ("connection buffer size is too small"): nghttp upgrades instead.
            url = f"http://127.0.0.1:{s.port}/big.bin"
            assert subprocess.run(["nghttp", "-u", url], capture_output=True).stdout == data
            ranged = subprocess.run(["nghttp", "-u", "-H", "range: bytes=5000000-", url],
                                    capture_output=True).stdout
            assert ranged == data[5000000:]
            continue
        status, fields, body, code = get(s.port, "/big.bin", http=http, scheme=scheme)
        assert status == 200 and code == 0 and body == data
        status, fields, body, code = get(s.port, "/big.bin", ["Range: bytes=5000000-"], http=http,
                                         scheme=scheme)
        assert status == 206 and body == data[5000000:]
        assert fields["content-range"] == f"bytes 5000000-{BIG - 1}/{BIG}"


def test_serve_route_takes_the_cache_settings(site, tmp_path, servers):
    port = free_port()
    config = tmp_path / "tronada.toml"
    config.write_text(f"""
[server]
bind = ["127.0.0.1:{port}"]
access_log = "off"

[[route]]
path = "/files/"
static.root = "{site}"
static.precompressed = true
static.cache_valid = "0s"
static.cache_entries = 100
static.cache_file_size = "16KiB"
static.cache_memory = "1MiB"
""")
    s = Server([str(BIN / "tronada"), "serve", "-c", str(config)], port)
    servers.append(s)
    assert text(port, "/files/small.txt") == (200, "hello world\n")
    (site / "small.txt").write_text("changed\n")
    assert text(port, "/files/small.txt") == (200, "changed\n")
    status, fields, body, _ = get(port, "/files/app.js", ["Accept-Encoding: br"])
    assert body == b"BROTLI-BYTES" and fields["content-encoding"] == "br"
    status, _, body, _ = get(port, "/files/big.bin", http="--http2-prior-knowledge")
    assert status == 200 and body == (site / "big.bin").read_bytes()
    p = subprocess.run([str(BIN / "tronada"), "check", "-c", str(config)], capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr
    assert "precompressed = true" in p.stdout and "cache_entries = 100" in p.stdout


@pytest.mark.parametrize("flag,value", [("--cache-valid", "soon"), ("--cache-memory", "lots"),
                                        ("--cache-file-size", "-1"), ("--cache-entries", "many")])
def test_bad_cache_flags_stop_before_binding(site, flag, value):
    p = subprocess.run([str(BIN / "tronada"), "static", str(site), "-b",
                        f"127.0.0.1:{free_port()}", flag, value], capture_output=True, text=True,
                       timeout=10)
    assert p.returncode != 0
    assert flag in p.stderr or value in p.stderr
