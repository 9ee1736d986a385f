"""The echo example (the tour's 0b_tcpserver) answered by Python clients."""
import socket
import threading


def test_echoes_lines(start_server):
    server = start_server("0b_tcpserver")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"hello\nworld\n")
        got = b""
        while got.count(b"\n") < 2:
            got += s.recv(100)
        assert got == b"hello\nworld\n"


def test_line_sent_one_byte_at_a_time(start_server):
    server = start_server("0b_tcpserver")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for b in b"slowly\n":
            s.send(bytes([b]))
        assert s.recv(100) == b"slowly\n"


def test_fifty_concurrent_clients(start_server):
    server = start_server("0b_tcpserver")
    errors = []

    def client(i):
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
                for j in range(20):
                    line = f"client {i} line {j}\n".encode()
                    s.sendall(line)
                    got = b""
                    while not got.endswith(b"\n"):
                        got += s.recv(100)
                    assert got == line
        except Exception as e:  # noqa: BLE001 - collected and reported below
            errors.append(e)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_overlong_line_closes_connection_and_server_survives(start_server):
    server = start_server("0b_tcpserver")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        try:
            s.sendall(b"x" * (200 * 1024))
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
        assert b"\n" not in data
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"still alive\n")
        assert s.recv(100) == b"still alive\n"
