#!/usr/bin/python3
"""Tornado 6 line echo server: the peer of build/bin/0b_tcpserver (bench/run.py `echo`
and `idle`). Same protocol and limits: echo each line back, lines up to 64 KiB.

    /usr/bin/python3 bench/peers/tornado_echo.py --port N [--address 127.0.0.1]
"""
import argparse
import asyncio

from tornado.iostream import StreamClosedError, UnsatisfiableReadError
from tornado.tcpserver import TCPServer


class EchoServer(TCPServer):
    async def handle_stream(self, stream, address):
        try:
            while True:
                line = await stream.read_until(b"\n", max_bytes=64 * 1024)
                await stream.write(line)
        except (StreamClosedError, UnsatisfiableReadError):
            pass


async def main(port, address):
    server = EchoServer()
    server.listen(port, address, backlog=1024)
    print(f"tornado echo server on {address}:{port}", flush=True)
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
