"""A WebSocket echo server (Python's websockets, a peer that is not ours) that writes
the close code each connection received to a file, for the drain tests: what a proxy
in front says to its upstream when it goes away.
Usage: ws_echo_recorder.py PORT FILE

  a text message "big N" is answered with one binary message of N bytes; any other
  message is echoed."""
import asyncio
import sys

import websockets.server

PORT = int(sys.argv[1])
RECORD = sys.argv[2]


async def echo(ws, path=None):
    try:
        async for message in ws:
            if isinstance(message, str) and message.startswith("big "):
                await ws.send(b"x" * int(message.split()[1]))
            else:
                await ws.send(message)
    except websockets.exceptions.ConnectionClosed:
        pass
    with open(RECORD, "a") as f:
        f.write(f"{ws.close_code} {ws.close_reason}\n")


async def main():
    async with websockets.server.serve(echo, "127.0.0.1", PORT, max_size=None):
        await asyncio.Future()


asyncio.run(main())
