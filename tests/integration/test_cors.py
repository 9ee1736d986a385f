"""Per-route CORS (`cors = {...}`) through `tronada serve`, with real requests: preflights
answered by tronada for a proxy route and a static route, and the CORS fields added to
the backends' own responses."""
import pytest

from policy_servers import TRONADA, Tronada, Upstream


@pytest.fixture
def upstream():
    u = Upstream()
    yield u
    u.close()


@pytest.fixture
def served(tmp_path, upstream):
    public = tmp_path / "public"
    public.mkdir()
    (public / "index.html").write_text("hello\n")
    config = tmp_path / "tronada.toml"
    config.write_text(f"""
[[route]]
path = "/api/"
cors = {{ origins = ["https://a.example", "https://b.example:8443", "https://*.c.example"], methods = ["GET", "PUT"], headers = ["X-Token", "Content-Type"], expose_headers = ["X-Request-Id"], credentials = true, max_age = "10m" }}
proxy = {{ to = ["http://127.0.0.1:{upstream.port}"] }}

[[route]]
path = "/plain/"
proxy = {{ to = ["http://127.0.0.1:{upstream.port}"] }}

[[route]]
path = "/"
cors = {{ origins = ["*"] }}
static = {{ root = "public" }}
""")
    t = Tronada(config)
    yield t
    t.stop()


def vary(headers):
    return [v.strip().lower() for v in ",".join(headers.get_all("Vary") or []).split(",") if v.strip()]


def test_preflight_answered_by_tronada(served, upstream):
    status, headers, body = served.request("OPTIONS", "/api/items", {
        "Origin": "https://a.example",
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "X-Token, content-type",
    })
    assert status == 204
    assert body == b""
    assert headers["Access-Control-Allow-Origin"] == "https://a.example"
    assert headers["Access-Control-Allow-Credentials"] == "true"
    assert headers["Access-Control-Allow-Methods"] == "GET, PUT"
    assert headers["Access-Control-Allow-Headers"] == "x-token, content-type"
    assert headers["Access-Control-Max-Age"] == "600"
    assert "origin" in vary(headers)
    assert upstream.requests == []  # the backend never saw the preflight


@pytest.mark.parametrize("origin,method,asked", [
    ("https://evil.example", "PUT", ""),          # origin not listed
    ("https://a.example", "DELETE", ""),          # method not allowed
    ("https://a.example", "PUT", "X-Secret"),     # header not allowed
    ("https://b.example", "GET", ""),             # listed with another port
])
def test_preflight_refused_has_no_cors_fields(served, upstream, origin, method, asked):
    headers = {"Origin": origin, "Access-Control-Request-Method": method}
    if asked:
        headers["Access-Control-Request-Headers"] = asked
    status, h, _ = served.request("OPTIONS", "/api/items", headers)
    assert status == 204
    assert not [k for k in h.keys() if k.lower().startswith("access-control-")]
    assert "origin" in vary(h)
    assert upstream.requests == []


def test_actual_request_gets_cors_fields_on_the_backend_response(served, upstream):
    status, headers, body = served.request("GET", "/api/items", {"Origin": "https://a.example"})
    assert status == 200
    assert body == b'{"ok": true}\n'
    # tronada answers CORS on this route: the backend's own value is replaced.
    assert headers.get_all("Access-Control-Allow-Origin") == ["https://a.example"]
    assert headers["Access-Control-Allow-Credentials"] == "true"
    assert headers["Access-Control-Expose-Headers"] == "X-Request-Id"
    assert vary(headers) == ["accept-encoding", "origin"]
    assert len(upstream.requests) == 1


def test_subdomain_pattern_echoes_the_origin(served):
    status, headers, _ = served.request("GET", "/api/items", {"Origin": "https://x.c.example"})
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == "https://x.c.example"
    status, headers, _ = served.request("GET", "/api/items", {"Origin": "https://c.example"})
    assert "Access-Control-Allow-Origin" not in headers


def test_actual_request_from_other_or_no_origin(served):
    for extra in ({"Origin": "https://evil.example"}, {}):
        status, headers, _ = served.request("GET", "/api/items", extra)
        assert status == 200
        assert "Access-Control-Allow-Origin" not in headers
        assert "Access-Control-Allow-Credentials" not in headers
        assert "origin" in vary(headers)  # a cache must not reuse it across origins


def test_route_without_cors_passes_backend_headers(served):
    status, headers, _ = served.request("GET", "/plain/x", {"Origin": "https://a.example"})
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == "https://backend-said.example"
    assert vary(headers) == ["accept-encoding"]


def test_static_route_with_any_origin(served):
    status, headers, body = served.request("GET", "/index.html", {"Origin": "https://x.example"})
    assert status == 200
    assert body == b"hello\n"
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert "origin" not in vary(headers)  # "*" does not depend on Origin
    assert "Access-Control-Allow-Credentials" not in headers
    status, headers, _ = served.request("OPTIONS", "/index.html", {
        "Origin": "https://x.example", "Access-Control-Request-Method": "GET"})
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert headers["Access-Control-Allow-Methods"] == "GET, HEAD, POST"


def test_head_and_304_keep_cors_fields(served):
    status, headers, _ = served.request("HEAD", "/index.html", {"Origin": "https://x.example"})
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == "*"


def test_bad_cors_stops_check_with_a_message(tmp_path):
    import subprocess
    config = tmp_path / "bad.toml"
    config.write_text('[[route]]\npath = "/"\ncors = { origins = ["*"], headers = ["*"], '
                      'credentials = true }\nstatic = { root = "." }\n')
    r = subprocess.run([TRONADA, "check", "-c", str(config)], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode != 0
    assert "bad.toml:3:" in r.stderr
    assert '"*" in headers is no wildcard with credentials = true' in r.stderr
