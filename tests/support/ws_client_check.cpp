// ws_client_check: drives our WebSocket client (websocket_connect) against an echo
// server given by URL, for tests/integration/test_websocket.py (which runs it against
// Tornado). Prints one line per check; exits 0 only if all passed.
//
//   ws_client_check URL [--no-compression] [--expect-status N] [--expect-close CODE]
//                       [--ca FILE]
//
// --expect-status: the handshake must fail with this HTTP status.
// --expect-close: send nothing, wait for the server to close with CODE.
// --ca: trust this CA (PEM) for wss:// instead of the system's.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tronada/async/run_sync.h"
#include "tronada/websocket/websocket_client.h"

using namespace tronada;

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
  std::printf("%s %s\n", ok ? "ok" : "FAIL", what.c_str());
  std::fflush(stdout);
  if (!ok) ++failures;
}

Task<void> run(std::string url, bool compression, int expect_status, int expect_close,
               std::string ca) {
  WebSocketClientOptions options;
  if (!ca.empty()) {
    SSLClientConfig tls;
    tls.ca_file = ca;
    options.ssl = SSLContext::client(tls);
  }
  if (!compression) options.compression.reset();
  options.connect_timeout = std::chrono::seconds(10);
  if (expect_status) {
    try {
      auto conn = co_await websocket_connect(url, options);
      check(false, "handshake should have failed");
    } catch (const WebSocketHandshakeError& e) {
      check(e.status == expect_status, "handshake refused with " + std::to_string(e.status));
    }
    co_return;
  }
  auto conn = co_await websocket_connect(url, options);
  check(true, "connected, extensions: '" + conn->extensions() + "'");
  if (compression) check(!conn->extensions().empty(), "permessage-deflate negotiated");
  if (expect_close) {
    auto m = co_await conn->read_message();
    check(!m.has_value(), "closed by the server");
    check(conn->close_code() == expect_close, "close code " + std::to_string(conn->close_code()));
    co_return;
  }

  co_await conn->write_message("hello");
  auto m = co_await conn->read_message();
  check(m && m->data == "hello" && !m->binary, "text echo");

  std::string bin("\x00\x01\x02\xff", 4);
  co_await conn->write_message(bin, true);
  m = co_await conn->read_message();
  check(m && m->data == bin && m->binary, "binary echo");

  std::string text = "caf\xc3\xa9 \xe2\x82\xac";
  co_await conn->write_message(text);
  m = co_await conn->read_message();
  check(m && m->data == text, "UTF-8 echo");

  for (std::size_t n : {125u, 126u, 65535u, 65536u, 1u << 20}) {
    std::string big(n, 'a');
    for (std::size_t i = 0; i < n; i += 97) big[i] = static_cast<char>('a' + i % 26);
    co_await conn->write_message(big, true);
    m = co_await conn->read_message();
    check(m && m->data == big, "echo of " + std::to_string(n) + " bytes");
  }

  // Many in flight at once: order is kept.
  for (int i = 0; i < 200; ++i) co_await conn->write_message("m" + std::to_string(i));
  bool in_order = true;
  for (int i = 0; i < 200; ++i) {
    m = co_await conn->read_message();
    in_order = in_order && m && m->data == "m" + std::to_string(i);
  }
  check(in_order, "200 pipelined messages in order");

  bool got_pong = false;
  conn->on_pong = [&](std::string_view d) { got_pong = d == "hb"; };
  conn->ping("hb");
  co_await conn->write_message("after ping");
  m = co_await conn->read_message();
  check(m && m->data == "after ping" && got_pong, "ping answered with pong");

  conn->close(1000, "done");
  m = co_await conn->read_message();
  check(!m.has_value(), "read after close gives nullopt");
  check(conn->close_code() == 1000,
        "server echoed close code " + std::to_string(conn->close_code()));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s URL [--no-compression] [--expect-status N]\n", argv[0]);
    return 2;
  }
  std::string url = argv[1];
  bool compression = true;
  int expect_status = 0, expect_close = 0;
  std::string ca;
  for (int i = 2; i < argc; ++i) {
    if (std::strcmp(argv[i], "--no-compression") == 0) {
      compression = false;
    } else if (std::strcmp(argv[i], "--expect-status") == 0 && i + 1 < argc) {
      expect_status = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--ca") == 0 && i + 1 < argc) {
      ca = argv[++i];
    } else if (std::strcmp(argv[i], "--expect-close") == 0 && i + 1 < argc) {
      expect_close = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  try {
    run_sync([&] { return run(url, compression, expect_status, expect_close, ca); },
             std::chrono::seconds(60));
  } catch (const std::exception& e) {
    std::printf("FAIL exception: %s\n", e.what());
    return 1;
  }
  return failures == 0 ? 0 : 1;
}
