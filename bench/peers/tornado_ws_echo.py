#!/usr/bin/python3
"""Tornado 6 WebSocket echo server: the peer of build/bin/ws_echo (bench/run.py `ws-echo`
and `ws-idle`). Echoes each message at /ws back as it came (text as text, binary as
binary); compression only if the client offers it, as ws_echo.

    /usr/bin/python3 bench/peers/tornado_ws_echo.py --port N [--address 127.0.0.1]
"""
import argparse
import asyncio

import tornado.web
import tornado.websocket


class Echo(tornado.websocket.WebSocketHandler):
    def check_origin(self, origin):
        return True

    def get_compression_options(self):
        return {}

    def on_message(self, message):
        self.write_message(message, binary=isinstance(message, bytes))


async def main(port, address):
    app = tornado.web.Application([(r"/ws", Echo)])
    app.listen(port, address, backlog=1024)
    print(f"tornado websocket echo server on {address}:{port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--address", default="127.0.0.1")
    args = parser.parse_args()
    asyncio.run(main(args.port, args.address))
