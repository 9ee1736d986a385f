"""WebSocket against real peers: Python's `websockets` (Debian's python3-websockets) as
the client of build/bin/ws_echo, and our client (build/bin/ws_client_check) against a
Tornado 6 WebSocket server."""
import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import websockets

from conftest import BIN, Server, free_port

HERE = Path(__file__).resolve().parent


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


@pytest.fixture
def echo(start_server):
    server = start_server("ws_echo")
    return f"ws://127.0.0.1:{server.port}"


def raw_exchange(port, request: bytes, frames: bytes = b"", timeout=5.0):
    """Sends a handshake (and frames right behind it), returns all bytes until close."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request + frames)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            out += chunk
        return out


def handshake(path="/ws", extra=b""):
    return (
        b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n" + extra + b"\r\n"
    )


def masked(opcode, payload: bytes, fin=True, rsv1=False):
    mask = b"\x01\x02\x03\x04"
    head = bytes([(0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode])
    n = len(payload)
    if n <= 125:
        head += bytes([0x80 | n])
    elif n <= 0xFFFF:
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def close_code_of(data: bytes):
    """The code of the first close frame the server sent after its 101 head."""
    body = data.split(b"\r\n\r\n", 1)[1]
    i = 0
    while i + 2 <= len(body):
        op = body[i] & 0x0F
        n = body[i + 1] & 0x7F
        j = i + 2
        if n == 126:
            n = int.from_bytes(body[j:j + 2], "big")
            j += 2
        elif n == 127:
            n = int.from_bytes(body[j:j + 8], "big")
            j += 8
        if op == 8:
            return int.from_bytes(body[j:j + 2], "big") if n >= 2 else 1005
        i = j + n
    return None


# --- python websockets -> ws_echo ---------------------------------------------------


@pytest.mark.parametrize("compression", [None, "deflate"])
def test_echo_text_binary_big_and_fragmented(echo, compression):
    async def go():
        async with websockets.connect(echo + "/ws", compression=compression,
                                      max_size=None) as ws:
            ext = ws.response_headers.get("Sec-WebSocket-Extensions")
            assert (ext == "permessage-deflate") == (compression == "deflate")
            await ws.send("hello")
            assert await ws.recv() == "hello"
            await ws.send("caf\u00e9 \u20ac")
            assert await ws.recv() == "caf\u00e9 \u20ac"
            await ws.send(b"\x00\xff\x01")
            assert await ws.recv() == b"\x00\xff\x01"
            for n in (0, 125, 126, 65535, 65536, 5 * 1024 * 1024):
                data = bytes(i % 251 for i in range(n))
                await ws.send(data)
                assert await ws.recv() == data
            await ws.send(iter(["one ", "two ", "three"]))
            assert await ws.recv() == "one two three"
            await ws.send(iter([b"a", b"b"]))
            assert await ws.recv() == b"ab"
            pong = await ws.ping(b"hb")
            await asyncio.wait_for(pong, 5)
            for i in range(100):
                await ws.send(f"m{i}")
            for i in range(100):
                assert await ws.recv() == f"m{i}"
        assert ws.close_code == 1000
    run(go())


def test_deflate_parameters(echo):
    from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

    async def go():
        factory = ClientPerMessageDeflateFactory(
            server_no_context_takeover=True, client_no_context_takeover=True,
            server_max_window_bits=10, client_max_window_bits=True)
        async with websockets.connect(echo + "/ws", extensions=[factory]) as ws:
            ext = ws.response_headers["Sec-WebSocket-Extensions"]
            assert "server_no_context_takeover" in ext
            assert "client_no_context_takeover" in ext
            assert "server_max_window_bits=10" in ext
            for i in range(20):
                msg = "repeat " * (i * 50)
                await ws.send(msg)
                assert await ws.recv() == msg
    run(go())


def test_subprotocol_and_close_code(echo):
    async def go():
        async with websockets.connect(echo + "/ws", subprotocols=["other", "echo"]) as ws:
            assert ws.subprotocol == "echo"
            await ws.close(4000, "bye")
        assert ws.close_code == 4000
    run(go())


def test_request_headers_after_open_only_when_kept(echo):
    # By default request() drops its header fields once open() returned (an idle
    # WebSocket holds no more than it needs); keep_request_headers() keeps them, as
    # Tornado keeps its request.
    async def go():
        headers = {"X-Team": "blue"}
        async with websockets.connect(echo + "/ws-header", extra_headers=headers) as ws:
            await ws.send("header X-Team")
            assert await ws.recv() == "blue"
            await ws.send("header X-Missing")
            assert await ws.recv() == "(none)"
        async with websockets.connect(echo + "/ws", extra_headers=headers) as ws:
            await ws.send("header X-Team")
            assert await ws.recv() == "header X-Team"  # plain echo there
    run(go())


def test_message_over_10_mib_closes_with_1009(echo):
    async def go():
        async with websockets.connect(echo + "/ws", compression=None, max_size=None) as ws:
            with pytest.raises(websockets.ConnectionClosed):
                await ws.send(b"x" * (10 * 1024 * 1024 + 1))
                await ws.recv()
        assert ws.close_code == 1009
    run(go())


@pytest.mark.parametrize("request_bytes,status", [
    (b"GET /ws HTTP/1.1\r\nHost: h\r\n\r\n", 400),  # no Upgrade
    (b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n", 400),  # no Connection
    (b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     b"Sec-WebSocket-Version: 13\r\n\r\n", 400),  # no key
    (b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     b"Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n", 400),
    (b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n", 426),
    (b"GET /ws-same-origin HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
     b"Connection: Upgrade\r\nOrigin: http://evil.example\r\n"
     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", 403),
])
def test_bad_handshakes(start_server, request_bytes, status):
    server = start_server("ws_echo")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(request_bytes)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(4096)
            assert chunk
            head += chunk
    assert head.startswith(b"HTTP/1.1 %d " % status), head
    if status == 426:
        assert b"Sec-WebSocket-Version: 13\r\n" in head


def test_same_origin_is_accepted(start_server):
    server = start_server("ws_echo")
    data = raw_exchange(server.port,
                        handshake("/ws-same-origin", b"Origin: http://127.0.0.1\r\n"),
                        masked(0x8, b"\x03\xe8"))
    assert data.startswith(b"HTTP/1.1 101 ")
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in data
    assert close_code_of(data) == 1000


@pytest.mark.parametrize("frames,code", [
    (masked(0x1, b"\xff\xfe"), 1007),  # invalid UTF-8
    (b"\x81\x02hi", 1002),  # unmasked client frame
    (masked(0x3, b""), 1002),  # reserved opcode
    (masked(0x0, b"x"), 1002),  # continuation without a message
    (masked(0x9, b"x", fin=False), 1002),  # fragmented control frame
    (masked(0x9, b"x" * 126), 1002),  # control frame too long
    (masked(0x1, b"x", rsv1=True), 1002),  # RSV1 without deflate negotiated
    (masked(0x8, b"\x03\xed"), 1002),  # close code 1005 on the wire
    (masked(0x1, b"a", fin=False) + masked(0x1, b"b"), 1002),  # new message inside one
])
def test_protocol_errors_close_with_their_code(start_server, frames, code):
    server = start_server("ws_echo")
    data = raw_exchange(server.port, handshake(), frames)
    assert data.startswith(b"HTTP/1.1 101 ")
    assert close_code_of(data) == code


def test_frames_sent_with_the_handshake_are_not_lost(start_server):
    server = start_server("ws_echo")
    data = raw_exchange(server.port, handshake(),
                        masked(0x1, b"early") + masked(0x8, b"\x03\xe8"))
    body = data.split(b"\r\n\r\n", 1)[1]
    assert body.startswith(b"\x81\x05early")
    assert close_code_of(data) == 1000


def test_many_connections_at_once(echo):
    async def one(i):
        async with websockets.connect(echo + "/ws") as ws:
            for j in range(10):
                await ws.send(f"{i}:{j}")
                assert await ws.recv() == f"{i}:{j}"

    async def go():
        await asyncio.gather(*(one(i) for i in range(50)))
    run(go())


def test_chat_example_broadcasts(start_server):
    server = start_server("06_websocket")
    url = f"ws://127.0.0.1:{server.port}/chatsocket"

    async def go():
        async with websockets.connect(url, origin=f"http://127.0.0.1:{server.port}") as a, \
                websockets.connect(url, origin=f"http://127.0.0.1:{server.port}") as b:
            await asyncio.sleep(0.1)
            await a.send("hi all")
            assert await a.recv() == "hi all"
            assert await b.recv() == "hi all"
    run(go())
    import urllib.request
    page = urllib.request.urlopen(f"http://127.0.0.1:{server.port}/", timeout=5).read()
    assert b"new WebSocket" in page


# --- our client -> Tornado -----------------------------------------------------------


@pytest.fixture
def tornado_server():
    port = free_port()
    server = Server(["/usr/bin/python3", str(HERE / "apps" / "tornado_ws_echo.py"), str(port)],
                    port)
    yield port
    server.stop()


def client_check(*args):
    proc = subprocess.run([str(BIN / "ws_client_check"), *args], capture_output=True,
                          text=True, timeout=90)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_our_client_against_tornado_with_deflate(tornado_server):
    out = client_check(f"ws://127.0.0.1:{tornado_server}/ws")
    assert "ok permessage-deflate negotiated" in out


def test_our_client_against_tornado_without_deflate(tornado_server):
    out = client_check(f"ws://127.0.0.1:{tornado_server}/plain", "--no-compression")
    assert "extensions: ''" in out


def test_our_client_sees_the_servers_close_code(tornado_server):
    client_check(f"ws://127.0.0.1:{tornado_server}/closer", "--no-compression",
                 "--expect-close", "4001")


def test_our_client_reports_a_refused_handshake(tornado_server):
    client_check(f"ws://127.0.0.1:{tornado_server}/missing", "--expect-status", "404")


def test_our_client_over_tls_against_tornado(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True)
    port = free_port()
    server = Server(["/usr/bin/python3", str(HERE / "apps" / "tornado_ws_echo.py"), str(port),
                     str(cert), str(key)], port)
    try:
        out = client_check(f"wss://localhost:{port}/ws", "--ca", str(cert))
        assert "ok permessage-deflate negotiated" in out
    finally:
        server.stop()


def test_our_client_against_our_server(echo):
    client_check(echo + "/ws")
