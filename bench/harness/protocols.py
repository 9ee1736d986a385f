"""The wire side of the harness's own clients: the one exchange that proves a server is
ready, and the one an idle connection makes before it goes quiet. Each protocol has a
send half and a receive half so that many connections can be opened in batches."""

import re

ECHO_LINE = b"x" * 63 + b"\n"
HTTP_REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ValueError("connection closed")
        data += chunk
    return data


def echo_send(sock):
    sock.sendall(ECHO_LINE)


def echo_receive(sock):
    if recv_exact(sock, len(ECHO_LINE)) != ECHO_LINE:
        raise ValueError("echo mismatch")


def echo_roundtrip(sock):
    echo_send(sock)
    echo_receive(sock)


WS_HANDSHAKE = (b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Sec-WebSocket-Version: 13\r\n\r\n")
WS_PAYLOAD = b"x" * 64
WS_MASK = b"\x12\x34\x56\x78"
# A masked binary frame (clients must mask) and the unmasked echo the server sends back.
WS_FRAME = (b"\x82" + bytes([0x80 | len(WS_PAYLOAD)]) + WS_MASK +
            bytes(b ^ WS_MASK[i % 4] for i, b in enumerate(WS_PAYLOAD)))
WS_ECHO = b"\x82" + bytes([len(WS_PAYLOAD)]) + WS_PAYLOAD


def ws_open_send(sock):
    sock.sendall(WS_HANDSHAKE)


def ws_open_receive(sock):
    """Reads the 101 head, then does one message round trip."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ValueError("connection closed during the WebSocket handshake")
        data += chunk
    if not data.startswith(b"HTTP/1.1 101 "):
        raise ValueError(f"WebSocket handshake refused: {data[:40]!r}")
    ws_roundtrip(sock)


def ws_roundtrip(sock):
    sock.sendall(WS_FRAME)
    if recv_exact(sock, len(WS_ECHO)) != WS_ECHO:
        raise ValueError("websocket echo mismatch")


def http_send(sock):
    sock.sendall(HTTP_REQUEST)


def http_roundtrip(sock):
    http_send(sock)
    return http_receive(sock)


def http_receive(sock):
    """Reads one whole response to GET / (Content-Length or chunked); returns it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ValueError("connection closed before the response headers")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0]
    if not re.match(rb"HTTP/1\.[01] 200 ", status):
        raise ValueError(f"unexpected status line {status!r}")
    m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    if m:
        body += recv_exact(sock, int(m.group(1)) - len(body)) if int(m.group(1)) > len(body) else b""
    elif re.search(rb"(?im)^transfer-encoding:\s*chunked", head):
        while not body.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                raise ValueError("connection closed in a chunked body")
            body += chunk
    return head, body


def idle_exchange(proto):
    """For a server's `proto` (see spec.Spec): how an idle connection is opened (a send
    half and a receive half) and the round trip that shows it is still served."""
    if proto == "echo":
        return echo_send, echo_receive, echo_roundtrip
    if proto == "ws":
        return ws_open_send, ws_open_receive, ws_roundtrip
    return http_send, http_receive, http_roundtrip
