#!/usr/bin/python3
"""Tornado 6's WSGIContainer serving a WSGI app: a peer of `tronada wsgi` in
bench/run.py (`wsgi-hello`, `flask-hello`). Tornado runs the app on its IOLoop thread
(its default executor), one process.

    /usr/bin/python3 bench/peers/tornado_wsgi.py MODULE:CALLABLE --port N [--address A]
"""
import argparse
import asyncio
import importlib
import os
import sys

import tornado.httpserver
import tornado.wsgi


async def main(spec, port, address):
    module, _, name = spec.partition(":")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    app = getattr(importlib.import_module(module), name or "application")
    server = tornado.httpserver.HTTPServer(tornado.wsgi.WSGIContainer(app))
    server.listen(port, address, backlog=1024)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("app")
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--address", default="127.0.0.1")
    args = parser.parse_args()
    try:
        asyncio.run(main(args.app, args.port, args.address))
    except KeyboardInterrupt:
        pass
