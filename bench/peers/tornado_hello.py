#!/usr/bin/python3
"""Tornado 6 "Hello, world" over HTTP/1.1: the peer of build/bin/01_getting_started
(bench/run.py `http-plaintext`, `http-close`, `http-idle`). Tornado's own
getting-started program, one process, default settings (keep-alive on, idle
connections kept for an hour).

    /usr/bin/python3 bench/peers/tornado_hello.py --port N [--address 127.0.0.1]
"""
import argparse
import asyncio

import tornado.web


class MainHandler(tornado.web.RequestHandler):
    def get(self):
        self.write("Hello, world")


async def main(port, address):
    app = tornado.web.Application([(r"/", MainHandler)])
    app.listen(port, address, backlog=1024)
    print(f"tornado hello on http://{address}:{port}/", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--address", default="127.0.0.1")
    args = parser.parse_args()
    try:
        asyncio.run(main(args.port, args.address))
    except KeyboardInterrupt:
        pass
