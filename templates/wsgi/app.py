"""A tiny WSGI app to start from; replace it with your Flask or Django project and
point `app` in tronada.toml at its callable (e.g. "myproject.wsgi:application")."""
import json


def application(environ, start_response):
    if environ["PATH_INFO"] == "/api/hello":
        body = json.dumps({"message": "Hello from {{name}}!"}).encode()
        ctype = "application/json"
    else:
        body = b"<!doctype html><title>{{name}}</title><h1>{{name}}</h1>" \
               b"<p>A WSGI app behind tronada. <a href=\"/api/hello\">JSON</a></p>\n"
        ctype = "text/html; charset=utf-8"
    start_response("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body)))])
    return [body]
