"""SERVERS: every server a workload can name, in one table. A server is a peer program
(peers/) in one configuration, with its label for the report; the order here is the
order `--list` and `--help` show.

To add one: `add(name, label, proto, command, missing, version)`, with a command from
peers/ (or a new function there for a new configuration); see spec.Spec.
"""

from .peers import (h2o, nginx, php_fpm, postgres, static_files, tornado, tronada, upstream,
                    wsgi)
from .spec import Spec, missing_all, missing_module

SERVERS = {}


def add(name, label, proto, command, missing, version=None):
    SERVERS[name] = Spec(name, label, proto, command, missing, version)


# Echo, WebSocket echo and HTTP hello world: the examples against Tornado and nginx.
add("tronada-echo", "tronada (0b_tcpserver)", "echo", tronada.example_command("0b_tcpserver"),
    tronada.missing("0b_tcpserver"))
add("tornado-echo", "Tornado TCPServer", "echo", tornado.script_command("tornado_echo.py"),
    tornado.missing, tornado.version)
add("tronada-ws", "tronada (ws_echo)", "ws", tronada.example_command("ws_echo"),
    tronada.missing("ws_echo"))
add("tornado-ws", "Tornado WebSocketHandler", "ws", tornado.script_command("tornado_ws_echo.py"),
    tornado.missing, tornado.version)
add("nginx", "nginx", "http", nginx.hello_command, nginx.missing, nginx.version)
add("tornado-http", "Tornado hello", "http", tornado.script_command("tornado_hello.py"),
    tornado.missing, tornado.version)
add("tronada-http", "tronada (01_getting_started)", "http",
    tronada.example_command("01_getting_started"),
    tronada.missing("01_getting_started", "not built: run ./scripts/build"))

# WSGI: the same app module (bench/peers/wsgi_hello.py, flask_hello.py) behind each
# server, one worker process each; access logs off where a server has them on.
for _app, _module, _dep in (("wsgi", "wsgi_hello", "json"), ("flask", "flask_hello", "flask")):
    _spec = f"{_module}:application"
    _need = missing_module(_dep, "python3-flask")
    add(f"tronada-{_app}", "tronada wsgi (1 thread)", "http", tronada.wsgi_command(_spec),
        missing_all(tronada.missing("tronada"), _need))
    add(f"gunicorn-sync-{_app}", "gunicorn (sync, 1 worker)", "http",
        wsgi.gunicorn_sync_command(_spec), missing_all(wsgi.missing_gunicorn, _need),
        wsgi.gunicorn_version)
    add(f"gunicorn-gthread-{_app}", "gunicorn (gthread, 4 threads)", "http",
        wsgi.gunicorn_gthread_command(_spec), missing_all(wsgi.missing_gunicorn, _need),
        wsgi.gunicorn_version)
    add(f"uwsgi-{_app}", "uWSGI (--http-socket, 1 process)", "http", wsgi.uwsgi_command(_spec),
        missing_all(wsgi.missing_uwsgi, _need), wsgi.uwsgi_version)
    add(f"tornado-{_app}", "Tornado WSGIContainer", "http", tornado.wsgi_command(_spec),
        missing_all(tornado.missing, _need), tornado.version)

# FastCGI: each gateway with its own php-fpm pool (peers/php_fpm.py).
add("nginx-php", "nginx fastcgi_pass (keepalive 2) → php-fpm (2 children)", "http",
    lambda port, wd: php_fpm.with_php_fpm(
        port, wd, lambda sock: nginx.fastcgi_argv(port, wd, sock)),
    missing_all(php_fpm.missing, nginx.missing), nginx.version)
add("tronada-php", "tronada fastcgi (--max-conns 2) → php-fpm (2 children)", "http",
    lambda port, wd: php_fpm.with_php_fpm(port, wd, lambda sock: tronada.fastcgi_argv(port, sock)),
    missing_all(php_fpm.missing, tronada.missing("tronada")))

# Reverse proxy: each gateway with its own upstream nginx (peers/upstream.py).
add("nginx-proxy", "nginx proxy_pass (upstream keepalive 64) → nginx", "http",
    lambda port, wd: upstream.with_upstream(
        port, wd, lambda up_port: nginx.proxy_argv(port, wd, up_port)),
    nginx.missing, nginx.version)
add("tronada-proxy", "tronada proxy → nginx", "http",
    lambda port, wd: upstream.with_upstream(
        port, wd, lambda up_port: tronada.proxy_argv(port, up_port)),
    missing_all(nginx.missing, tronada.missing("tronada")))

# http-db: a handler doing one query per request against one PostgreSQL for the run.
add("tronada-db", "tronada (08_async_db, pg::Pool of 10)", "http",
    tronada.async_db_command(lambda: postgres.pg_server().dsn),
    missing_all(postgres.missing, tronada.missing("08_async_db")))
add("tornado-db", "Tornado + asyncpg (pool of 10)", "http",
    tornado.pg_command(
        lambda: f"postgresql://postgres@127.0.0.1:{postgres.pg_server().port}/postgres"),
    missing_all(postgres.missing, tornado.missing, missing_module("asyncpg", "python3-asyncpg")),
    tornado.version)

# The `client` workload measures load generators, not servers: two nginx instances
# (the fixed server), one loaded by wrk and one by our HTTP client.
for _name, _label in (("client-wrk", "wrk → nginx"),
                      ("client-tronada", "AsyncHTTPClient (http_client_bench) → nginx")):
    add(_name, _label, "http", nginx.hello_command, nginx.missing, nginx.version)

# HTTP/2, clear text by prior knowledge and over TLS by ALPN.
for _tls, _suffix in ((False, "h2c"), (True, "h2-tls")):
    add(f"nginx-{_suffix}", f"nginx ({_suffix})", "tcp", nginx.h2_command(_tls),
        nginx.missing, nginx.version)
    add(f"h2o-{_suffix}", f"h2o ({_suffix})", "tcp", h2o.h2o_command(_tls), h2o.missing,
        h2o.version)
    add(f"tronada-{_suffix}", f"tronada ({_suffix}, http_test_server)", "tcp",
        tronada.test_server_command(_tls),
        tronada.missing("http_test_server", "not built: run ./scripts/build"))

# Framework workloads: tronada's Application against Tornado's with the same handlers
# (bench/framework_bench.cpp, bench/peers/tornado_framework.py), and the framework
# against a bare HTTPServer delegate.
for _routes in (3, 50):
    add(f"tronada-routes{_routes}", f"tronada Application, {_routes} rules", "http",
        tronada.framework_command(_routes),
        tronada.missing("framework_bench", "not built: run ./scripts/build"))
    add(f"tornado-routes{_routes}", f"Tornado Application, {_routes} rules", "http",
        tornado.framework_command(_routes), tornado.missing, tornado.version)
add("tronada-bare", "tronada HTTPServer delegate (http_test_server)", "http",
    tronada.test_server_command(False),
    tronada.missing("http_test_server", "not built: run ./scripts/build"))

# HTTPS over HTTP/1.1: the h2-tls servers; wrk offers no ALPN, so they answer HTTP/1.1.
add("nginx-https", "nginx (HTTPS)", "tcp", nginx.h2_command(True), nginx.missing, nginx.version)
add("tronada-https", "tronada (HTTPS, http_test_server)", "tcp", tronada.test_server_command(True),
    tronada.missing("http_test_server", "not built: run ./scripts/build"))

# Static files (peers/static_files.py): `tronada static` against h2o's file handler and
# nginx with sendfile and open_file_cache, on clear text (HTTP/1.1, h2c by prior
# knowledge) and over TLS (h2 by ALPN).
for _tls, _suffix in ((False, ""), (True, "-tls")):
    add(f"tronada-static{_suffix}", f"tronada static{' (TLS)' if _tls else ''}", "tcp",
        static_files.tronada_command(_tls), tronada.missing("tronada"))
    add(f"h2o-static{_suffix}", f"h2o file.dir{' (TLS)' if _tls else ''}", "tcp",
        static_files.h2o_command(_tls), h2o.missing, h2o.version)
add("nginx-static", "nginx (sendfile, open_file_cache)", "tcp", static_files.nginx_command(),
    nginx.missing, nginx.version)
add("nginx-static-h2c", "nginx (sendfile, open_file_cache, h2c)", "tcp",
    static_files.nginx_command(http2=True), nginx.missing, nginx.version)
add("nginx-static-tls", "nginx (sendfile, open_file_cache, TLS)", "tcp",
    static_files.nginx_command(tls=True, http2=True), nginx.missing, nginx.version)

# Metrics on and off (issue 19's budget: at most 3 % more server CPU per request): the
# same server with and without the admin listener, which is what turns counting on.
for _admin, _suffix in ((False, ""), (True, "-metrics")):
    _on = " with metrics (admin listener on)" if _admin else ""
    if _admin:
        add("tronada-static-metrics", f"tronada static{_on}", "tcp",
            static_files.tronada_command(admin=True), tronada.missing("tronada"))
    add(f"tronada-serve-static{_suffix}", f"tronada serve, static route{_on}", "tcp",
        static_files.tronada_serve_command(admin=_admin), tronada.missing("tronada"))
