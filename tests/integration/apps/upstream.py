"""A small HTTP/1.1 upstream for the proxy tests, on Python's http.server (a peer that is
not ours). Usage: upstream.py PORT NAME

  /whoami          NAME, with the peer port of our connection in X-Peer-Port
  /health          200, or 503 after GET /sick
  /sick, /well     switch /health
  /slow?s=N        answers after N seconds
  /sha             POST: the SHA-256 and length of the body (Content-Length or chunked)
  /die-mid-body    sends a chunked head and one chunk, then kills the process
  /garbage         answers with bytes that are not HTTP
  /big-header      a response head of 100 KiB
"""
import hashlib
import http.server
import os
import sys
import time
import urllib.parse

NAME = sys.argv[2] if len(sys.argv) > 2 else "upstream"
state = {"healthy": True}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, body, headers=()):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query)
        if url.path == "/whoami":
            self.reply(200, NAME, [("X-Peer-Port", str(self.client_address[1]))])
        elif url.path == "/health":
            self.reply(200 if state["healthy"] else 503, "health")
        elif url.path == "/sick":
            state["healthy"] = False
            self.reply(200, "sick")
        elif url.path == "/well":
            state["healthy"] = True
            self.reply(200, "well")
        elif url.path == "/slow":
            time.sleep(float(q.get("s", ["1"])[0]))
            self.reply(200, "slow " + NAME)
        elif url.path == "/garbage":
            self.wfile.write(b"SMTP ready\r\n\r\n")
            self.close_connection = True
        elif url.path == "/big-header":
            self.reply(200, "big", [("X-Big", "x" * 100_000)])
        elif url.path == "/die-mid-body":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"5\r\nhello\r\n")
            self.wfile.flush()
            time.sleep(0.2)
            os._exit(1)
        else:
            self.reply(404, "not found")

    do_HEAD = do_GET

    def do_POST(self):
        h = hashlib.sha256()
        n = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                left = size
                while left:
                    piece = self.rfile.read(min(left, 1 << 16))
                    h.update(piece)
                    n += len(piece)
                    left -= len(piece)
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length", "0"))
            while left:
                piece = self.rfile.read(min(left, 1 << 16))
                if not piece:
                    break
                h.update(piece)
                n += len(piece)
                left -= len(piece)
        self.reply(200, f"{n} {h.hexdigest()}")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


if __name__ == "__main__":
    Server(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
