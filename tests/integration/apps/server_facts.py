"""Answers with the status named in the query string (percent-encoded, latin-1), and
reports the environ's server facts: what test_wsgi_gunicorn_parity.py compares between
tronada and gunicorn."""
import json
from urllib.parse import unquote


def application(environ, start_response):
    if environ["PATH_INFO"] == "/status":
        start_response(unquote(environ["QUERY_STRING"], encoding="latin-1"),
                       [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]
    facts = {k: environ.get(k) for k in ("SERVER_NAME", "SERVER_PORT", "HTTP_HOST",
                                         "wsgi.url_scheme")}
    body = json.dumps(facts).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
