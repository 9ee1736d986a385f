#!/usr/bin/python3
"""Writes the binary seed files of tests/fuzz/corpus with real client libraries.

The text seeds (HTTP requests, cookies, configs...) are written by hand; the ones that
are binary protocols come from the libraries peers use, so that the fuzzer starts from
what real clients and backends send:
  http2_session/     client connections from python3-h2 (without the preface, which the
                     target prepends)
  websocket_frames/  frames from python3-websockets (masked as a client sends them,
                     compressed with its permessage-deflate), after the setup byte
  fastcgi_record/    php-fpm-style responses encoded per the FastCGI 1.0 spec
Run: /usr/bin/python3 tests/fuzz/make_corpus.py (from the repository root).
"""
import os
import struct

import h2.config
import h2.connection
import h2.settings
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Close, Frame, Opcode

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def write(target, name, data):
    os.makedirs(os.path.join(ROOT, target), exist_ok=True)
    with open(os.path.join(ROOT, target, name), "wb") as f:
        f.write(data)


def h2_client():
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    return conn


def h2_seeds():
    def headers(path, method="GET", extra=()):
        return [(":method", method), (":scheme", "http"), (":authority", "localhost:8888"),
                (":path", path), ("user-agent", "h2load nghttp2/1.52.0"), *extra]

    c = h2_client()
    c.send_headers(1, headers("/"), end_stream=True)
    write("http2_session", "get", c.data_to_send()[len(PREFACE):])

    c = h2_client()
    c.send_headers(1, headers("/stream/upload", "POST", [("content-length", "11")]))
    c.send_data(1, b"hello ", end_stream=False)
    c.send_data(1, b"world", end_stream=True)
    c.send_headers(3, headers("/late/x"), end_stream=True)
    c.send_headers(5, headers("/pause/y", "PUT"))
    c.send_data(5, b"x" * 300, end_stream=True)
    write("http2_session", "concurrent", c.data_to_send()[len(PREFACE):])

    c = h2_client()
    c.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 16,
                       h2.settings.SettingCodes.HEADER_TABLE_SIZE: 0})
    c.send_headers(1, headers("/a", extra=[("cookie", "a=1"), ("cookie", "b=2")]),
                   end_stream=True)
    c.ping(b"12345678")
    c.increment_flow_control_window(1000)
    c.send_headers(3, headers("/b"), end_stream=False)
    c.reset_stream(3)
    c.send_headers(5, headers("/c", "HEAD"), end_stream=True)
    c.close_connection()
    write("http2_session", "settings_ping_reset_goaway", c.data_to_send()[len(PREFACE):])

    c = h2_client()
    c.send_headers(1, headers("/trailers", "POST"))
    c.send_data(1, b"body")
    c.send_headers(1, [("x-checksum", "42")], end_stream=True)
    c.send_headers(3, headers("/priority"), end_stream=True, priority_weight=200,
                   priority_depends_on=1)
    write("http2_session", "trailers_priority", c.data_to_send()[len(PREFACE):])


def ws_seeds():
    def frames(items, setup, deflate=False):
        ext = []
        if deflate:
            ext = [PerMessageDeflate(remote_no_context_takeover=bool(setup & 4),
                                     local_no_context_takeover=bool(setup & 4),
                                     remote_max_window_bits=15, local_max_window_bits=15)]
        client = not (setup & 1)  # a server target receives what a client sends
        return bytes([setup]) + b"".join(f.serialize(mask=client, extensions=ext) for f in items)

    text = Frame(Opcode.TEXT, "héllo wörld ✓".encode())
    binary = Frame(Opcode.BINARY, bytes(range(256)))
    ping = Frame(Opcode.PING, b"ping")
    close = Frame(Opcode.CLOSE, Close(1000, "bye").serialize())
    write("websocket_frames", "server_plain", frames([text, binary, ping, close], 0))
    write("websocket_frames", "client_plain", frames([text, Frame(Opcode.PONG, b""), close], 1))
    frag = [Frame(Opcode.TEXT, "frag".encode(), fin=False), Frame(Opcode.PING, b"in between"),
            Frame(Opcode.CONT, "mented ✓".encode(), fin=False),
            Frame(Opcode.CONT, b"!", fin=True)]
    write("websocket_frames", "fragmented", frames(frag, 0))
    write("websocket_frames", "server_deflate",
          frames([text, Frame(Opcode.TEXT, b"a" * 2000), binary, close], 2, deflate=True))
    write("websocket_frames", "client_deflate_no_takeover",
          frames([text, text, Frame(Opcode.BINARY, b"z" * 500)], 1 | 2 | 4, deflate=True))


def fcgi_record(rtype, rid, content):
    pad = (8 - len(content) % 8) % 8
    return struct.pack(">BBHHBB", 1, rtype, rid, len(content), pad, 0) + content + b"\0" * pad


def fcgi_seeds():
    STDOUT, STDERR, END, VALUES_RESULT = 6, 7, 3, 10
    end = fcgi_record(END, 1, struct.pack(">IB3x", 0, 0))
    head = (b"X-Powered-By: PHP/8.2.7\r\nContent-type: text/html; charset=UTF-8\r\n\r\n")
    write("fastcgi_record", "php_hello",
          fcgi_record(STDOUT, 1, head + b"<h1>Hello</h1>\n") + fcgi_record(STDOUT, 1, b"") + end)
    write("fastcgi_record", "php_warning_split",
          fcgi_record(STDERR, 1, b"PHP Warning:  Undefined variable $x in /srv/index.php on line 3")
          + fcgi_record(STDOUT, 1, b"Status: 404 Not Found\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n")
          + fcgi_record(STDOUT, 1, b"Content-Type: text/plain\r\n\r\nnot found")
          + fcgi_record(STDERR, 1, b"") + fcgi_record(STDOUT, 1, b"") + end)
    nv = b"".join(bytes([len(n), len(v)]) + n + v for n, v in
                  [(b"FCGI_MAX_CONNS", b"5"), (b"FCGI_MAX_REQS", b"5"), (b"FCGI_MPXS_CONNS", b"0")])
    write("fastcgi_record", "get_values_result_then_redirect",
          fcgi_record(VALUES_RESULT, 0, nv)
          + fcgi_record(STDOUT, 1, b"Location: /index.php\r\n\r\n") + fcgi_record(STDOUT, 1, b"")
          + fcgi_record(END, 1, struct.pack(">IB3x", 255, 0)))
    write("fastcgi_record", "overloaded", fcgi_record(END, 1, struct.pack(">IB3x", 0, 2)))


if __name__ == "__main__":
    h2_seeds()
    ws_seeds()
    fcgi_seeds()
