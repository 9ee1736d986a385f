"""Answers with the name of the host it runs on (TRONADA_HOST_NAME), for the multi-host
test: which app host a request reached, whatever the front did on the way."""
import os

NAME = os.environ.get("TRONADA_HOST_NAME", "unknown").encode()


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(NAME)))])
    return [NAME]
