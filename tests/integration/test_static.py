"""`tronada static DIR` served to curl and Python clients."""
import http.client
import os
import subprocess

import pytest

from conftest import BIN, Server, free_port


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "site"
    (root / "sub").mkdir(parents=True)
    (root / "index.html").write_text("<h1>home</h1>\n")
    (root / "sub" / "a.txt").write_text("alpha\n")
    (root / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    (tmp_path / "secret.txt").write_text("outside the root\n")
    os.symlink(tmp_path / "secret.txt", root / "escape.txt")
    os.symlink(root / "sub" / "a.txt", root / "inside.txt")
    return root


@pytest.fixture
def server(site):
    port = free_port()
    s = Server([str(BIN / "tronada"), "static", str(site), "-b", f"127.0.0.1:{port}"], port)
    yield s
    assert s.stop() == 0, "tronada static must exit cleanly on SIGTERM"


def get(server, path, headers=None, method="GET"):
    c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    c.request(method, path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r, body


def test_index_and_files(server, site):
    r, body = get(server, "/")
    assert r.status == 200 and body == b"<h1>home</h1>\n"
    assert r.getheader("Content-Type") == "text/html; charset=utf-8"
    r, body = get(server, "/sub/a.txt")
    assert r.status == 200 and body == b"alpha\n"
    assert r.getheader("Content-Type").startswith("text/plain")


def test_directory_without_slash_redirects(server):
    r, _ = get(server, "/sub?x=1")
    assert r.status == 301 and r.getheader("Location") == "/sub/?x=1"


def test_missing_is_404_and_post_is_405(server):
    assert get(server, "/nope")[0].status == 404
    r, _ = get(server, "/", method="POST")
    assert r.status == 405 and r.getheader("Allow") == "GET, HEAD"


@pytest.mark.parametrize("path", ["/../secret.txt", "/%2e%2e/secret.txt", "/sub/..%2f..%2fsecret.txt",
                                  "/sub%2f..%2f..%2fsecret.txt", "/%00index.html", "/..\\secret.txt"])
def test_no_escape_from_root(server, path):
    r, body = get(server, path)
    assert r.status in (400, 403, 404)
    assert b"outside" not in body


def test_symlinks_only_inside_root(server):
    assert get(server, "/escape.txt")[0].status in (403, 404)
    r, body = get(server, "/inside.txt")
    assert r.status == 200 and body == b"alpha\n"


def test_head_has_length_but_no_body(server):
    r, body = get(server, "/sub/a.txt", method="HEAD")
    assert r.status == 200 and body == b"" and r.getheader("Content-Length") == "6"


def test_large_file_streams_intact(server, site):
    out = subprocess.run(["curl", "-sf", f"http://127.0.0.1:{server.port}/big.bin"],
                         capture_output=True, check=True).stdout
    assert out == (site / "big.bin").read_bytes()


def test_conditional_and_range(server, site):
    r, _ = get(server, "/sub/a.txt")
    etag, last_modified = r.getheader("ETag"), r.getheader("Last-Modified")
    assert get(server, "/sub/a.txt", {"If-None-Match": etag})[0].status == 304
    assert get(server, "/sub/a.txt", {"If-Modified-Since": last_modified})[0].status == 304
    r, body = get(server, "/sub/a.txt", {"Range": "bytes=1-3"})
    assert r.status == 206 and body == b"lph" and r.getheader("Content-Range") == "bytes 1-3/6"
    r, body = get(server, "/sub/a.txt", {"Range": "bytes=-2"})
    assert r.status == 206 and body == b"a\n"
    r, _ = get(server, "/sub/a.txt", {"Range": "bytes=100-"})
    assert r.status == 416 and r.getheader("Content-Range") == "bytes */6"
    big = (site / "big.bin").read_bytes()
    r, body = get(server, "/big.bin", {"Range": "bytes=1000000-2999999"})
    assert r.status == 206 and body == big[1000000:3000000]


def test_bad_root_fails_before_binding(tmp_path):
    port = free_port()
    p = subprocess.run([str(BIN / "tronada"), "static", str(tmp_path / "missing"), "-b",
                        f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=10)
    assert p.returncode != 0
    assert "missing" in p.stderr
