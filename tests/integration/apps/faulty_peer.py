"""A backend that misbehaves on purpose, for tests/integration/test_faults.py and
scripts/soak. Usage: faulty_peer.py PORT

Each connection is served by its own thread. A FastCGI client (first byte 1, the record
version) is never answered. An HTTP request is answered according to its path:

  /silent              read the request, never answer (the connection stays open)
  /trickle?n=N&ms=D    a 200 with an N-byte body (default 200), sent one byte every D ms
                       (default 5), head included
  /reset               read the request, then close with SO_LINGER 0 (an RST, no answer)
  /reset-mid           send a head announcing 1000 bytes and 100 of them, then an RST
  /ka                  200 "ka", and the connection stays open for the next request
  /count?p=PATH        how many requests for PATH came in so far
  anything else        200 "ok"

The connection is closed after each answer but /ka's.
"""
import socket
import struct
import sys
import threading
import time
import urllib.parse


def trickle_body(n):
    return bytes(b"abcdefghijklmnopqrstuvwxyz"[i % 26] for i in range(n))


def reset(conn):
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def hold(conn):
    # Drain until the other side gives up, so its close is seen and our fd freed.
    try:
        while conn.recv(65536):
            pass
    except OSError:
        pass
    conn.close()


COUNTS = {}
LOCK = threading.Lock()


def serve(conn):
    try:
        while serve_one(conn):
            pass
    except OSError:
        conn.close()


def serve_one(conn):
    """One request; True if the connection stays open for another."""
    data = conn.recv(65536)
    if not data:
        conn.close()
        return False
    if data[0] == 1:
        hold(conn)
        return False
    while b"\r\n\r\n" not in data:
        more = conn.recv(65536)
        if not more:
            conn.close()
            return False
        data += more
    target = data.split(b" ", 2)[1].decode()
    url = urllib.parse.urlsplit(target)
    q = urllib.parse.parse_qs(url.query)
    path = url.path.rsplit("/", 1)[-1]
    with LOCK:
        COUNTS[path] = COUNTS.get(path, 0) + 1
    head = data.split(b"\r\n\r\n", 1)[0].lower()
    for line in head.split(b"\r\n"):
        if line.startswith(b"content-length:"):  # read (and drop) a request body
            left = int(line.split(b":")[1]) - len(data.split(b"\r\n\r\n", 1)[1])
            while left > 0:
                more = conn.recv(min(left, 65536))
                if not more:
                    break
                left -= len(more)
    if path == "ka":
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nka")
        return True
    if path == "count":
        with LOCK:
            n = str(COUNTS.get(q["p"][0], 0)).encode()
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                     % (len(n), n))
        conn.close()
    elif path == "silent":
        hold(conn)
    elif path == "trickle":
        n = int(q.get("n", ["200"])[0])
        delay = float(q.get("ms", ["5"])[0]) / 1000
        body = trickle_body(n)
        out = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
               b"Connection: close\r\n\r\n" % n) + body
        for i in range(len(out)):
            conn.sendall(out[i:i + 1])
            time.sleep(delay)
        conn.close()
    elif path == "reset":
        reset(conn)
    elif path == "reset-mid":
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 100)
        time.sleep(0.05)
        reset(conn)
    else:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        conn.close()
    return False


def main():
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", int(sys.argv[1])))
    listener.listen(256)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
