"""A Tornado 6 WebSocket echo server for tests/integration/test_websocket.py: the real
peer our client (build/bin/ws_client_check) talks to.
Usage: tornado_ws_echo.py PORT [CERTFILE KEYFILE] (with a certificate: wss only)."""
import ssl
import sys

import tornado.ioloop
import tornado.web
import tornado.websocket


class Echo(tornado.websocket.WebSocketHandler):
    def check_origin(self, origin):
        return True

    def get_compression_options(self):
        return {} if self.request.path == "/ws" else None

    def on_message(self, message):
        self.write_message(message, binary=isinstance(message, bytes))


class Closer(tornado.websocket.WebSocketHandler):
    def open(self):
        self.close(4001, "go away")


def main():
    port = int(sys.argv[1])
    app = tornado.web.Application([(r"/ws", Echo), (r"/plain", Echo), (r"/closer", Closer)])
    ssl_options = None
    if len(sys.argv) == 4:
        ssl_options = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_options.load_cert_chain(sys.argv[2], sys.argv[3])
    app.listen(port, "127.0.0.1", ssl_options=ssl_options)
    tornado.ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main()
