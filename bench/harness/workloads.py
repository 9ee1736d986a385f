"""WORKLOADS: what each benchmark measures, against which servers, with which load. The
order here is the order of `all`, `--list` and `--help`.

To add one, add a Workload below: its servers are names from servers.SERVERS, its load
a name from loadgen.LOADS; `what` is the paragraph the report prints above its table.
"""


class Workload:
    """One benchmark: a section of docs/benchmarks.md.

    name, title: the command-line name and the section's heading.
    kind: "throughput" (load generator runs, requests/s and CPU per request), "memory"
        (idle connections, bytes per connection) or "loop" (loop_bench).
    servers: the servers compared, in the report's order; reference: the one the
        others' ratio column is relative to.
    concurrency: the connection counts of a throughput workload (`--connections`
        overrides them).
    load: the load generator (a loadgen.LOADS name); load_by_server: a different one
        for some servers (the `client` workload compares load generators).
    path: what the load generator asks for; close: `Connection: close` on every
        request (wrk); tls: over TLS (wrk: https without ALPN, so HTTP/1.1; h2load: h2
        by ALPN).
    unit: the throughput column's unit; plot_goal: (value, label) of a goal line
        drawn on the plot.
    """

    def __init__(self, name, title, kind, servers, reference, what, concurrency=None,
                 close=False, path="/", tls=False, load="wrk", load_by_server=None,
                 unit="req/s", plot_goal=None):
        self.name = name
        self.title = title
        self.kind = kind
        self.servers = servers
        self.reference = reference
        self.what = what
        self.concurrency = concurrency or []
        self.close = close
        self.path = path
        self.tls = tls
        self.load = load
        self.load_by_server = load_by_server or {}
        self.unit = unit
        self.plot_goal = plot_goal

    def load_for(self, server):
        return self.load_by_server.get(server, self.load)

    def loads(self):
        """Every load generator this workload runs, the default first."""
        names = [self.load]
        names += [n for n in self.load_by_server.values() if n not in names]
        return names


WORKLOADS = {
    "loop": Workload(
        "loop", "IOLoop callbacks and timers against raw libuv", "loop", [], None,
        "`build/bin/loop_bench` pinned to the server CPU: the same callback and timer "
        "workloads through tronada's IOLoop and written directly on libuv, 5 rounds "
        "interleaved in one process."),
    "echo": Workload(
        "echo", "Line echo round trips", "throughput", ["tronada-echo", "tornado-echo"],
        "tornado-echo",
        "`build/bin/echo_client` (bench/echo_client.cpp): N connections, each sending a "
        "64-byte line and waiting for it to come back before sending the next. "
        "Throughput is round trips per second.", concurrency=[64], load="echo_client",
        unit="round trips/s"),
    "idle": Workload(
        "idle", "Memory per idle echo connection", "memory",
        ["tronada-echo", "tornado-echo"], "tornado-echo",
        "N TCP connections to the echo server, each echoing one line and then staying "
        "open; server memory before and after (smaps_rollup of the server's process "
        "tree), divided by N. Kernel socket buffers are not counted."),
    "ws-echo": Workload(
        "ws-echo", "WebSocket echo round trips", "throughput", ["tronada-ws", "tornado-ws"],
        "tornado-ws",
        "`build/bin/echo_client --websocket /ws` (bench/echo_client.cpp): N WebSockets, "
        "each sending a 64-byte binary message and waiting for its echo before sending "
        "the next; no compression (not offered). Goal: 20x Tornado's round trips per "
        "second.", concurrency=[100], load="echo_client-ws", path="/ws"),
    "ws-idle": Workload(
        "ws-idle", "Memory per idle WebSocket", "memory", ["tronada-ws", "tornado-ws"],
        "tornado-ws",
        "N WebSockets to the echo server, each doing the "
        "handshake and one 64-byte round trip and then staying open; server memory "
        "before and after (smaps_rollup), divided by N. Kernel socket buffers are not "
        "counted."),
    "http-plaintext": Workload(
        "http-plaintext", "HTTP/1.1 hello world, keep-alive", "throughput",
        ["nginx", "tornado-http", "tronada-http"], "nginx",
        "`wrk -t1 -cN --latency` on `GET /` answered with `Hello, world`; connections "
        "kept alive.", concurrency=[64, 256]),
    "http-close": Workload(
        "http-close", "HTTP/1.1 hello world, `Connection: close`", "throughput",
        ["nginx", "tornado-http", "tronada-http"], "nginx",
        "`wrk -t1 -cN --latency -H 'Connection: close'`: a new TCP connection per "
        "request.", concurrency=[64], close=True),
    "http-idle": Workload(
        "http-idle", "Memory per idle keep-alive HTTP connection", "memory",
        ["nginx", "tornado-http", "tronada-http"], "nginx",
        "N connections, each sending one `GET /`, reading the response and staying "
        "open; server memory before and after (smaps_rollup of the server's process "
        "tree: nginx's master and worker), divided by N. Kernel socket buffers are not "
        "counted.", plot_goal=(1024, "goal ≤ 1 KiB (DESIGN.md)")),
    "client": Workload(
        "client", "HTTP client requests/s against a fixed server, vs wrk", "throughput",
        ["client-wrk", "client-tronada"], "client-wrk",
        "The same nginx (`return 200`) loaded by `wrk -t1 -cN` and by "
        "`build/bin/http_client_bench -c N` (bench/http_client_bench.cpp: N coroutines "
        "fetching with one AsyncHTTPClient over N kept-alive connections), each pinned to "
        "the client CPU. The ratio column is the client's requests/s over wrk's (goal "
        "≥ 0.7×); the CPU column is nginx's.", concurrency=[64],
        load_by_server={"client-tronada": "http_client_bench"}),
    "wsgi-hello": Workload(
        "wsgi-hello", "WSGI hello world, one worker", "throughput",
        ["uwsgi-wsgi", "gunicorn-sync-wsgi", "gunicorn-gthread-wsgi", "tornado-wsgi",
         "tronada-wsgi"], "uwsgi-wsgi",
        "`wrk -t1 -cN --latency` on `GET /` of bench/peers/wsgi_hello.py (a list with one "
        "bytes object and a Content-Length), served by `tronada wsgi` (1 thread), gunicorn "
        "(sync; gthread with 4 threads), uWSGI (`--http-socket --plugin python3 --listen "
        "1024`, 1 process) and Tornado's WSGIContainer; one worker process each, no "
        "access log.", concurrency=[64]),
    "flask-hello": Workload(
        "flask-hello", "Flask hello world, one worker", "throughput",
        ["uwsgi-flask", "gunicorn-sync-flask", "gunicorn-gthread-flask", "tornado-flask",
         "tronada-flask"], "uwsgi-flask",
        "As `wsgi-hello` with bench/peers/flask_hello.py (Debian's Flask) returning "
        "`Hello, world` from one route.", concurrency=[64]),
    "php-hello": Workload(
        "php-hello", "PHP hello world through php-fpm (2 children)", "throughput",
        ["nginx-php", "tronada-php"], "nginx-php",
        "`wrk -t1 -cN --latency` on `GET /` of bench/peers/php/index.php (`echo \"Hello, "
        "world\"`) through nginx (`fastcgi_pass` with `fastcgi_keep_conn on` and an "
        "upstream `keepalive 2`) and through `tronada fastcgi --max-conns 2`; each gateway "
        "with its own php-fpm pool of the same configuration (static, 2 children, Unix "
        "socket), started in the gateway's process group so both are pinned to the server "
        "CPU and their CPU time includes PHP's.", concurrency=[64]),
    "proxy-hello": Workload(
        "proxy-hello", "Reverse proxy to a fixed upstream, hello world", "throughput",
        ["nginx-proxy", "tronada-proxy"], "nginx-proxy",
        "`wrk -t1 -cN --latency` on `GET /` through nginx (`proxy_pass` to an upstream "
        "block with `keepalive 64`, HTTP/1.1, Host and X-Forwarded-For/-Proto/-Host set) "
        "and through `tronada proxy --to` (its defaults, which add the same fields and "
        "Via); the upstream is an nginx answering `Hello, world`, one per gateway, in the "
        "gateway's process group so both are pinned to the server CPU and their CPU time "
        "includes the upstream's.", concurrency=[64]),
    "http-db": Workload(
        "http-db", "HTTP handler doing one PostgreSQL query", "throughput",
        ["tornado-db", "tronada-db"], "tornado-db",
        "`wrk -t1 -cN --latency` on `GET /` of examples/08_async_db (every row of a "
        "one-row table as JSON through `pg::Pool`) and of bench/peers/tornado_pg.py (the "
        "same with Tornado 6 and asyncpg, Debian's async driver); pools of 10 connections "
        "to one PostgreSQL 15 on loopback, which runs unpinned and is not counted in the "
        "servers' CPU.", concurrency=[64]),
    "https": Workload(
        "https", "HTTPS (HTTP/1.1 over TLS), hello world, keep-alive", "throughput",
        ["nginx-https", "tronada-https"], "nginx-https",
        "`wrk -t1 -cN --latency https://...` (TLS 1.3, P-256 self-signed certificate, "
        "no ALPN so HTTP/1.1) on `GET /` answered with `Hello, world`; the handshakes "
        "happen during the warm-up.", concurrency=[64], tls=True),
    "framework": Workload(
        "framework", "Framework overhead: Application + RequestHandler against a bare "
        "HTTPServer delegate", "throughput", ["tronada-bare", "tronada-http"], "tronada-bare",
        "`wrk -t1 -cN --latency` on `GET /` answered with `Hello, world` by the tour's "
        "01_getting_started (Application, routing, a RequestHandler per request, default "
        "headers, ETag) and by an HTTPServer delegate answering directly "
        "(tests/support/http_test_server). Goal: overhead under 10% (ratio ≥ 0.9×).",
        concurrency=[64]),
    "json": Workload(
        "json", "JSON serialisation handler", "throughput",
        ["tornado-routes3", "tronada-routes3"], "tornado-routes3",
        "`wrk -t1 -cN --latency` on `GET /json`: a handler serialising "
        "`{\"message\": \"Hello, World!\"}` per request (nlohmann::json through "
        "write_json; Tornado's write(dict)). bench/framework_bench.cpp and "
        "bench/peers/tornado_framework.py.", concurrency=[64], path="/json"),
    "routes": Workload(
        "routes", "Route lookup: the last of 50 regex rules against a 3-rule table",
        "throughput",
        ["tronada-routes3", "tronada-routes50", "tornado-routes3", "tornado-routes50"],
        "tronada-routes3",
        "`wrk -t1 -cN --latency` on `GET /item/42`, matched by `/item/([0-9]+)` placed "
        "as the last of 50 rules (`/`, `/json`, then 47 shaped "
        "`/api/v1/resourceK/(?P<id>[0-9]+)/(?P<name>[a-z]+)`), against the same server without "
        "the 47 fillers: the difference in CPU "
        "per request is the cost of the lookup.", concurrency=[64], path="/item/42"),
    "h2c": Workload(
        "h2c", "HTTP/2 over clear text (prior knowledge), hello world", "throughput",
        ["h2o-h2c", "nginx-h2c", "tronada-h2c"], "h2o-h2c",
        "`h2load -t1 -cN -m10 -D<seconds>` on `GET /` answered with `Hello, world` "
        "(h2o: its static file handler; nginx: `return 200`; tronada: an HTTPServer "
        "delegate, tests/support/http_test_server). One worker/thread each.",
        concurrency=[32], load="h2load"),
    "h2-tls": Workload(
        "h2-tls", "HTTP/2 over TLS (ALPN h2), hello world", "throughput",
        ["h2o-h2-tls", "nginx-h2-tls", "tronada-h2-tls"], "h2o-h2-tls",
        "`h2load -t1 -cN -m10 -D<seconds>` over TLS with a P-256 self-signed "
        "certificate; the handshakes happen during the warm-up. Same responders as "
        "`h2c`.", concurrency=[32], load="h2load", tls=True),
    # Static files: the product (`tronada static`) against h2o and nginx, one core each.
    **{f"static-{size}": Workload(
        f"static-{size}", f"Static file of {label}, HTTP/1.1 keep-alive", "throughput",
        ["h2o-static", "nginx-static", "tronada-static"],
        "nginx-static" if size == "1m" else "h2o-static",
        f"`wrk -t1 -cN --latency` on `GET /{name}` ({label}) from `tronada static DIR`, "
        "h2o's `file.dir` and nginx with `sendfile on` and `open_file_cache`; one "
        "worker/thread each, access logs off.", concurrency=[64], path=f"/{name}")
       for size, name, label in (("13b", "13b.txt", "13 B"), ("16k", "16k.bin", "16 KiB"),
                                 ("1m", "1m.bin", "1 MiB"))},
    "static-close": Workload(
        "static-close", "Static file of 13 B, `Connection: close`", "throughput",
        ["h2o-static", "nginx-static", "tronada-static"], "h2o-static",
        "`wrk -t1 -cN -H 'Connection: close'` on `GET /13b.txt`: a new connection per "
        "request, as the static workloads otherwise.", concurrency=[64], close=True,
        path="/13b.txt"),
    "static-h2c": Workload(
        "static-h2c", "Static file of 13 B, HTTP/2 over clear text", "throughput",
        ["h2o-static", "nginx-static-h2c", "tronada-static"], "h2o-static",
        "`h2load -t1 -cN -m10` (prior knowledge) on `GET /13b.txt`.", concurrency=[32],
        load="h2load", path="/13b.txt"),
    "static-h2-tls": Workload(
        "static-h2-tls", "Static file of 13 B, HTTP/2 over TLS", "throughput",
        ["h2o-static-tls", "nginx-static-tls", "tronada-static-tls"], "h2o-static-tls",
        "`h2load -t1 -cN -m10` over TLS (ALPN h2) on `GET /13b.txt`; P-256 self-signed "
        "certificate, handshakes during the warm-up.", concurrency=[32], load="h2load",
        tls=True, path="/13b.txt"),
    "metrics-static": Workload(
        "metrics-static", "Metrics on and off: `tronada static`, 13 B file", "throughput",
        ["tronada-static", "tronada-static-metrics"], "tronada-static",
        "`wrk -t1 -cN` on `GET /13b.txt` from `tronada static DIR`, without and with "
        "`--admin unix:PATH` (which turns the per-route counters on); the ratio and the "
        "CPU per request are the cost of counting.", concurrency=[64], path="/13b.txt"),
    "metrics-serve": Workload(
        "metrics-serve", "Metrics on and off: `tronada serve` route, 13 B file",
        "throughput", ["tronada-serve-static", "tronada-serve-static-metrics"],
        "tronada-serve-static",
        "`wrk -t1 -cN` on `GET /13b.txt` through a `[[route]] static` of `tronada serve`, "
        "without and with `admin = \"unix:PATH\"`: the request goes through the "
        "Application, its rule and a RequestHandler, as every route and native handler "
        "does.", concurrency=[64], path="/13b.txt"),
}
