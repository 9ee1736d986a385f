"""The demo's WSGI app: any WSGI callable works here (Flask, Django, ...); this one needs
nothing but the standard library. Served under /app by tronada.toml."""
import html
import json
import threading


def application(environ, start_response):
    path = environ.get("PATH_INFO", "") or "/"
    if path == "/json":
        body = json.dumps({
            "server": environ.get("SERVER_SOFTWARE", ""),
            "script_name": environ.get("SCRIPT_NAME", ""),
            "thread": threading.current_thread().name,
        }).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    if path != "/":
        body = b"not found\n"
        start_response("404 Not Found", [("Content-Type", "text/plain"),
                                         ("Content-Length", str(len(body)))])
        return [body]
    agent = html.escape(environ.get("HTTP_USER_AGENT", "unknown"))
    body = f"""<!doctype html>
<title>WSGI app</title>
<h1>Hello from a WSGI app</h1>
<p>This page comes from <code>demo/app.py</code>, running in Python embedded in tronada.
Your user agent: {agent}.</p>
<p>There is also <a href="{environ.get('SCRIPT_NAME', '')}/json">JSON</a>.
<a href="/">Back</a>.</p>
""".encode()
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                              ("Content-Length", str(len(body)))])
    return [body]
