"""WSGI hello world for bench/run.py `wsgi-hello`: the same module for every server
(tronada wsgi, gunicorn, uWSGI, Tornado's WSGIContainer)."""


def application(environ, start_response):
    body = b"Hello, world"
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
