#include "tronada/net/ssl_iostream.h"

#include <gtest/gtest.h>
#include <openssl/x509_vfy.h>

#include <string>
#include <vector>

#include "net/tls_test_support.h"
#include "support/loop_check.h"
#include "tronada/async/run_sync.h"
#include "tronada/async/sleep.h"
#include "tronada/async/spawn.h"
#include "tronada/base/log.h"
#include "tronada/net/ssl_context.h"
#include "tronada/net/tcp_client.h"

using namespace tronada;
using namespace tronada::tls_test;
using namespace std::chrono_literals;

namespace {

SSLServerConfig localhost_config() {
  return SSLServerConfig{.cert_file = certs().localhost.cert_file,
                         .key_file = certs().localhost.key_file};
}

std::shared_ptr<SSLContext> trusting_client(SSLClientConfig config = {}) {
  config.ca_file = certs().trust;
  return SSLContext::client(std::move(config));
}

Task<std::shared_ptr<SSLIOStream>> connect_tls(int port, std::shared_ptr<SSLContext> ctx,
                                               std::string hostname = "localhost") {
  TCPClient client;
  auto stream =
      co_await client.connect("127.0.0.1", port, 10s, std::move(ctx), std::move(hostname));
  auto tls = std::dynamic_pointer_cast<SSLIOStream>(stream);
  EXPECT_TRUE(tls);
  co_return tls;
}

Task<std::string> read_exactly(std::shared_ptr<IOStream> stream, std::size_t n) {
  co_return co_await stream->read_bytes(n);
}

Task<void> expect_round_trip(std::shared_ptr<IOStream> stream, std::string line) {
  co_await stream->write(line);
  std::string echoed = co_await stream->read_until("\n");
  EXPECT_EQ(echoed, line);
}

std::string payload(std::size_t n, unsigned seed) {
  std::string data(n, '\0');
  std::uint32_t x = seed;
  for (auto& c : data) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return data;
}

class SSLIOStreamTest : public ::testing::Test {
 protected:
  void SetUp() override { loop_.make_current(); }
  void TearDown() override {
    accepted_.clear();
    drain_and_close(loop_);
  }

  // Accepted streams are kept for inspection and echo what they read.
  TestListener::OnStream echo_server() {
    return [this](std::shared_ptr<IOStream> stream) {
      accepted_.push_back(std::dynamic_pointer_cast<SSLIOStream>(stream));
      spawn_logged(echo(std::move(stream)), "echo");
    };
  }

  template <typename F>
  void run(F&& make_task) {
    run_sync(std::forward<F>(make_task), 60s);
  }

  IOLoop loop_;
  std::vector<std::shared_ptr<SSLIOStream>> accepted_;
};

}  // namespace

// --- SSLContext ----------------------------------------------------------------------

TEST(SSLContextTest, BuildsServerAndClientContexts) {
  auto server = SSLContext::server(localhost_config());
  EXPECT_TRUE(server->is_server());
  EXPECT_NE(server->native_handle(), nullptr);
  auto client = SSLContext::client();
  EXPECT_FALSE(client->is_server());
}

TEST(SSLContextTest, MismatchedKeyNamesBothFiles) {
  // Another certificate's key, and a key of another type (which OpenSSL would file
  // under RSA instead of refusing).
  TempDir dir;
  std::string rsa_key = dir.file("rsa.key");
  EVP_PKEY* rsa = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(2048));
  ASSERT_TRUE(rsa);
  BIO* out = BIO_new_file(rsa_key.c_str(), "w");
  PEM_write_bio_PrivateKey(out, rsa, nullptr, nullptr, 0, nullptr, nullptr);
  BIO_free(out);
  EVP_PKEY_free(rsa);
  for (const std::string& key : {certs().other.key_file, rsa_key}) {
    try {
      SSLContext::server({.cert_file = certs().localhost.cert_file, .key_file = key});
      FAIL() << "a key that is not the certificate's was accepted: " << key;
    } catch (const SSLContextError& e) {
      std::string what = e.what();
      EXPECT_NE(what.find("does not match"), std::string::npos) << what;
      EXPECT_NE(what.find(certs().localhost.cert_file), std::string::npos) << what;
      EXPECT_NE(what.find(key), std::string::npos) << what;
    }
  }
}

TEST(SSLContextTest, MissingFileIsNamed) {
  try {
    SSLContext::server(
        {.cert_file = "/nonexistent/cert.pem", .key_file = certs().localhost.key_file});
    FAIL();
  } catch (const SSLContextError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("/nonexistent/cert.pem"), std::string::npos) << what;
    EXPECT_NE(what.find("No such file"), std::string::npos) << what;
  }
}

TEST(SSLContextTest, MalformedFilesAreNamed) {
  TempDir dir;
  std::string junk = dir.file("junk.pem");
  write_file(junk, "this is not PEM\n");
  for (bool bad_cert : {true, false}) {
    SSLServerConfig config = localhost_config();
    (bad_cert ? config.cert_file : config.key_file) = junk;
    try {
      SSLContext::server(config);
      FAIL() << "junk accepted as " << (bad_cert ? "certificate" : "key");
    } catch (const SSLContextError& e) {
      std::string what = e.what();
      EXPECT_NE(what.find(junk), std::string::npos) << what;
      EXPECT_NE(what.find(bad_cert ? "certificate" : "private key"), std::string::npos) << what;
    }
  }
  try {
    SSLContext::client({.ca_file = junk});
    FAIL() << "junk accepted as CA file";
  } catch (const SSLContextError& e) {
    EXPECT_NE(std::string(e.what()).find(junk), std::string::npos) << e.what();
  }
}

TEST(SSLContextTest, InvalidNamesAndProtocolsAreRejected) {
  for (const char* name : {"*", "a.*.test", "*.", ".test", "x..test"}) {
    SSLServerConfig config = localhost_config();
    config.sni_certificates[name] = certs().other;
    EXPECT_THROW(SSLContext::server(config), SSLContextError) << name;
  }
  SSLServerConfig config = localhost_config();
  config.alpn_protocols = {"h2", ""};
  EXPECT_THROW(SSLContext::server(config), SSLContextError);
  EXPECT_THROW(SSLContext::client({.alpn_protocols = {std::string(256, 'x')}}), SSLContextError);
  EXPECT_THROW(SSLContext::client({.ciphers = "NO-SUCH-CIPHER"}), SSLContextError);
  EXPECT_THROW(
      SSLContext::client({.min_version = TLSVersion::tls1_3, .max_version = TLSVersion::tls1_2}),
      SSLContextError);
}

// --- SSLIOStream ---------------------------------------------------------------------

TEST_F(SSLIOStreamTest, RoundTripOverLoopback) {
  TestListener server(loop_, SSLContext::server(localhost_config()), echo_server());
  ASSERT_EQ(server.status(), 0);
  auto client_ctx = trusting_client();
  run([&]() -> Task<void> {
    auto stream = co_await connect_tls(server.port(), client_ctx);
    EXPECT_TRUE(stream->handshake_done());
    EXPECT_FALSE(stream->tls_version().empty());
    EXPECT_EQ(common_name(stream->peer_certificate()), "localhost");
    EXPECT_EQ(stream->selected_alpn(), "");
    co_await expect_round_trip(stream, "hello\n");
    co_await expect_round_trip(stream, "again\n");
    stream->close();
  });
  ASSERT_EQ(accepted_.size(), 1u);
  EXPECT_EQ(accepted_[0]->sni_hostname(), "localhost");
  EXPECT_TRUE(accepted_[0]->server_side());
}

TEST_F(SSLIOStreamTest, VerifiesAnIpAddressAgainstItsSubjectAltName) {
  TestListener server(loop_, SSLContext::server(localhost_config()), echo_server());
  auto client_ctx = trusting_client();
  run([&]() -> Task<void> {
    // No server_hostname: the host itself, an IP literal, is checked (and not sent as SNI).
    TCPClient client;
    auto stream = co_await client.connect("127.0.0.1", server.port(), 10s, client_ctx);
    co_await expect_round_trip(stream, "by address\n");
    stream->close();
  });
  ASSERT_EQ(accepted_.size(), 1u);
  EXPECT_EQ(accepted_[0]->sni_hostname(), "");
}

TEST_F(SSLIOStreamTest, LargeTransferBothWays) {
  TestListener server(loop_, SSLContext::server(localhost_config()), echo_server());
  auto client_ctx = trusting_client();
  const std::string data = payload(8 << 20, 7);
  run([&]() -> Task<void> {
    auto stream = co_await connect_tls(server.port(), client_ctx);
    // Read while writing: the echo sends back as it receives, both directions at once.
    Future<std::string> echoed = spawn(read_exactly(stream, data.size()));
    co_await stream->write(data);
    EXPECT_EQ(stream->write_buffer_size(), 0u);
    std::string got = co_await echoed;
    EXPECT_EQ(got.size(), data.size());
    EXPECT_TRUE(got == data) << "echoed bytes differ";
    stream->close_gracefully();
  });
}

TEST_F(SSLIOStreamTest, AlpnPrefersServerOrderAndFallsBack) {
  SSLServerConfig config = localhost_config();
  config.alpn_protocols = {"h2", "http/1.1"};
  TestListener server(loop_, SSLContext::server(config), echo_server());
  struct Case {
    std::vector<std::string> offered;
    std::string expected;
  };
  std::vector<Case> cases = {{{"h2", "http/1.1"}, "h2"},
                             {{"http/1.1", "h2"}, "h2"},
                             {{"http/1.1"}, "http/1.1"},
                             {{"spdy/3"}, ""},
                             {{}, ""}};
  for (const auto& c : cases) {
    auto client_ctx = trusting_client({.alpn_protocols = c.offered});
    run([&]() -> Task<void> {
      auto stream = co_await connect_tls(server.port(), client_ctx);
      EXPECT_EQ(stream->selected_alpn(), c.expected);
      co_await expect_round_trip(stream, "alpn\n");
      EXPECT_EQ(accepted_.back()->selected_alpn(), c.expected);
      stream->close();
    });
  }
}

TEST_F(SSLIOStreamTest, SniPicksTheCertificate) {
  SSLServerConfig config = localhost_config();
  config.sni_certificates = {{"other.test", certs().other}, {"*.wild.test", certs().wildcard}};
  TestListener server(loop_, SSLContext::server(config), echo_server());
  auto verifying = trusting_client({.session_resumption = false});
  auto lax = SSLContext::client({.verify_peer = false, .session_resumption = false});
  struct Case {
    std::shared_ptr<SSLContext> client;
    std::string name;
    std::string expected_cn;
  };
  std::vector<Case> cases = {
      {verifying, "other.test", "other.test"},   {verifying, "OTHER.test", "other.test"},
      {verifying, "a.wild.test", "*.wild.test"}, {verifying, "localhost", "localhost"},
      {lax, "b.c.wild.test", "localhost"},       {lax, "unknown.test", "localhost"}};
  for (const auto& c : cases) {
    run([&]() -> Task<void> {
      auto stream = co_await connect_tls(server.port(), c.client, c.name);
      EXPECT_EQ(common_name(stream->peer_certificate()), c.expected_cn) << c.name;
      co_await expect_round_trip(stream, "sni\n");
      EXPECT_EQ(accepted_.back()->sni_hostname(), c.name);
      stream->close();
    });
  }
}

namespace {

// Connects expecting the handshake to fail; returns the error's real_error.
Task<std::error_code> failed_handshake(int port, std::shared_ptr<SSLContext> ctx,
                                       std::string hostname, std::string* what) {
  try {
    co_await connect_tls(port, std::move(ctx), std::move(hostname));
    ADD_FAILURE() << "handshake succeeded";
  } catch (const SSLHandshakeError& e) {
    *what = e.what();
    co_return e.real_error;
  }
  co_return std::error_code();
}

}  // namespace

TEST_F(SSLIOStreamTest, WrongHostCertificateIsRejected) {
  TestListener server(loop_,
                      SSLContext::server({.cert_file = certs().other.cert_file,
                                          .key_file = certs().other.key_file}),
                      echo_server());
  auto client_ctx = trusting_client();
  run([&]() -> Task<void> {
    std::string what;
    std::error_code ec = co_await failed_handshake(server.port(), client_ctx, "localhost", &what);
    EXPECT_EQ(ec, std::error_code(X509_V_ERR_HOSTNAME_MISMATCH, tls_verify_category()));
    EXPECT_NE(what.find("hostname mismatch"), std::string::npos) << what;
    EXPECT_NE(what.find("(localhost)"), std::string::npos) << what;
    // Our client's alert ends the server side too.
    for (int i = 0; i < 400 && !accepted_.at(0)->closed(); ++i) co_await sleep(5ms);
    EXPECT_TRUE(accepted_.at(0)->closed());
    EXPECT_EQ(&accepted_.at(0)->error().category(), &tls_category());
  });
}

TEST_F(SSLIOStreamTest, ExpiredCertificateIsRejected) {
  TestListener server(loop_,
                      SSLContext::server({.cert_file = certs().expired.cert_file,
                                          .key_file = certs().expired.key_file}),
                      echo_server());
  auto client_ctx = trusting_client();
  run([&]() -> Task<void> {
    std::string what;
    std::error_code ec = co_await failed_handshake(server.port(), client_ctx, "localhost", &what);
    EXPECT_EQ(ec, std::error_code(X509_V_ERR_CERT_HAS_EXPIRED, tls_verify_category()));
    EXPECT_NE(what.find("expired"), std::string::npos) << what;
  });
}

TEST_F(SSLIOStreamTest, UntrustedCertificateIsRejected) {
  TestListener server(loop_, SSLContext::server(localhost_config()), echo_server());
  // Trusting another certificate only, and then the system's CAs.
  auto other_only = SSLContext::client({.ca_file = certs().other.cert_file});
  auto system_cas = SSLContext::client();
  run([&]() -> Task<void> {
    for (const auto& ctx : {other_only, system_cas}) {
      std::string what;
      std::error_code ec = co_await failed_handshake(server.port(), ctx, "localhost", &what);
      EXPECT_EQ(ec, std::error_code(X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, tls_verify_category()))
          << what;
    }
  });
}

TEST_F(SSLIOStreamTest, PlaintextClientIsClosedCleanly) {
  std::shared_ptr<SSLIOStream> server_stream;
  Future<void> server_handshake;
  TestListener server(loop_, SSLContext::server(localhost_config()),
                      [&](std::shared_ptr<IOStream> stream) {
                        server_stream = std::dynamic_pointer_cast<SSLIOStream>(stream);
                        server_handshake = server_stream->wait_for_handshake();
                      });
  log::Level saved = log::level();
  log::set_level(log::Level::debug);
  test_support::LogCapture logs;
  run([&]() -> Task<void> {
    TCPClient client;
    auto stream = co_await client.connect("127.0.0.1", server.port());
    co_await stream->write("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    try {
      co_await stream->read_until_close();  // an alert, then EOF (or a reset)
    } catch (const StreamClosedError&) {
    }
    try {
      co_await server_handshake;
      ADD_FAILURE() << "a plaintext request passed for a handshake";
    } catch (const SSLHandshakeError& e) {
      EXPECT_EQ(&e.real_error.category(), &tls_category());
      EXPECT_NE(std::string(e.what()).find("http request"), std::string::npos) << e.what();
    }
  });
  log::set_level(saved);
  ASSERT_TRUE(server_stream);
  EXPECT_TRUE(server_stream->closed());
  EXPECT_EQ(&server_stream->error().category(), &tls_category());
  std::string lines = logs.contents();
  EXPECT_NE(lines.find("debug [tls] TLS handshake with 127.0.0.1"), std::string::npos) << lines;
  EXPECT_EQ(lines.find(" error ["), std::string::npos) << lines;
  EXPECT_EQ(lines.find(" warning ["), std::string::npos) << lines;
}

TEST_F(SSLIOStreamTest, ClientCertificateVerification) {
  SSLServerConfig config = localhost_config();
  config.client_ca_file = certs().client.cert_file;
  TestListener server(loop_, SSLContext::server(config), echo_server());
  auto with_cert =
      trusting_client({.cert_file = certs().client.cert_file, .key_file = certs().client.key_file});
  auto without_cert = trusting_client();
  run([&]() -> Task<void> {
    auto stream = co_await connect_tls(server.port(), with_cert);
    co_await expect_round_trip(stream, "certified\n");
    EXPECT_EQ(common_name(accepted_.back()->peer_certificate()), "client");
    stream->close();

    // In TLS 1.3 the client finishes first and learns of the refusal on its next read.
    bool refused = false;
    try {
      auto anonymous = co_await connect_tls(server.port(), without_cert);
      co_await anonymous->write("anonymous\n");
      co_await anonymous->read_until("\n");
    } catch (const StreamClosedError&) {
      refused = true;
    }
    EXPECT_TRUE(refused);
    EXPECT_TRUE(accepted_.back()->closed());
  });
}

TEST_F(SSLIOStreamTest, SessionsAreResumed) {
  SSLServerConfig tls13 = localhost_config();
  SSLServerConfig tls12_cache = localhost_config();  // session ids, no tickets
  tls12_cache.max_version = TLSVersion::tls1_2;
  tls12_cache.session_tickets = false;
  for (const auto& config : {tls13, tls12_cache}) {
    TestListener server(loop_, SSLContext::server(config), echo_server());
    auto client_ctx = trusting_client();
    std::vector<bool> client_reused, server_reused;
    run([&]() -> Task<void> {
      for (int i = 0; i < 3; ++i) {
        auto stream = co_await connect_tls(server.port(), client_ctx);
        // The round trip also reads the TLS 1.3 tickets that follow the handshake.
        co_await expect_round_trip(stream, "resume\n");
        client_reused.push_back(stream->session_reused());
        server_reused.push_back(accepted_.back()->session_reused());
        stream->close_gracefully();
      }
    });
    EXPECT_EQ(client_reused, (std::vector<bool>{false, true, true}));
    EXPECT_EQ(server_reused, (std::vector<bool>{false, true, true}));
  }
}

TEST_F(SSLIOStreamTest, CloseGracefullySendsCloseNotify) {
  std::vector<std::shared_ptr<SSLIOStream>> streams;
  std::vector<Future<std::string>> reads;
  TestListener server(loop_, SSLContext::server(localhost_config()),
                      [&](std::shared_ptr<IOStream> stream) {
                        streams.push_back(std::dynamic_pointer_cast<SSLIOStream>(stream));
                        reads.push_back(stream->read_until_close());
                      });
  auto client_ctx = trusting_client();
  run([&]() -> Task<void> {
    for (bool graceful : {true, false}) {
      auto stream = co_await connect_tls(server.port(), client_ctx);
      co_await stream->write("last words");
      if (graceful) {
        stream->close_gracefully();
      } else {
        stream->close();
      }
      std::string got = co_await reads.back();
      EXPECT_EQ(got, "last words");
      EXPECT_EQ(streams.back()->close_notify_received(), graceful);
      EXPECT_EQ(streams.back()->error(), uv_error(UV_EOF));
    }
  });
}

TEST_F(SSLIOStreamTest, ShutdownWriteSendsCloseNotifyAfterTheDataAndKeepsReading) {
  std::vector<std::shared_ptr<SSLIOStream>> streams;
  std::vector<Future<std::string>> reads;
  TestListener server(loop_, SSLContext::server(localhost_config()),
                      [&](std::shared_ptr<IOStream> stream) {
                        streams.push_back(std::dynamic_pointer_cast<SSLIOStream>(stream));
                        reads.push_back(stream->read_until_close());
                      });
  auto client_ctx = trusting_client();
  const std::string data = payload(1 << 20, 3);
  run([&]() -> Task<void> {
    auto stream = co_await connect_tls(server.port(), client_ctx);
    stream->write(data, [] {});
    stream->shutdown_write();
    std::string got = co_await reads.back();
    EXPECT_TRUE(got == data) << "the close_notify overtook the data";
    EXPECT_TRUE(streams.back()->close_notify_received());
    // The server answers with its close_notify, which our side still reads.
    std::string rest = co_await stream->read_until_close();
    EXPECT_EQ(rest, "");
    EXPECT_TRUE(stream->close_notify_received());
  });
}

TEST_F(SSLIOStreamTest, WritesBeforeTheHandshakeAreSentAfterIt) {
  TestListener server(loop_, SSLContext::server(localhost_config()),
                      [&](std::shared_ptr<IOStream> stream) {
                        // Accepted a moment ago: the handshake has not even started.
                        stream->write("greeting\n", nullptr);
                        std::string_view pieces[] = {"two ", "pieces\n"};
                        stream->write_pieces(pieces, 2);
                        spawn_logged(echo(stream), "echo");
                      });
  auto client_ctx = trusting_client();
  run([&]() -> Task<void> {
    auto stream = co_await connect_tls(server.port(), client_ctx);
    EXPECT_EQ(co_await stream->read_until("\n"), "greeting\n");
    EXPECT_EQ(co_await stream->read_until("\n"), "two pieces\n");
    co_await expect_round_trip(stream, "then echo\n");
    stream->close();
  });
}

TEST_F(SSLIOStreamTest, HandshakeCallbackForm) {
  bool called = false;
  std::string sni;
  TestListener server(loop_, SSLContext::server(localhost_config()),
                      [&](std::shared_ptr<IOStream> stream) {
                        auto tls = std::dynamic_pointer_cast<SSLIOStream>(stream);
                        tls->wait_for_handshake([&, tls] {
                          called = true;
                          sni = tls->sni_hostname();
                        });
                        spawn_logged(echo(stream), "echo");
                      });
  auto client_ctx = trusting_client();
  run([&]() -> Task<void> {
    auto stream = co_await connect_tls(server.port(), client_ctx);
    co_await expect_round_trip(stream, "callback\n");
    stream->close();
  });
  EXPECT_TRUE(called);
  EXPECT_EQ(sni, "localhost");
}

TEST_F(SSLIOStreamTest, CloseDuringTheHandshakeFailsWaiters) {
  Future<void> server_handshake;
  TestListener server(loop_, SSLContext::server(localhost_config()),
                      [&](std::shared_ptr<IOStream> stream) {
                        auto tls = std::dynamic_pointer_cast<SSLIOStream>(stream);
                        server_handshake = tls->wait_for_handshake();
                        tls->close();  // nothing tells SSLIOStream but its close watch
                      });
  auto client_ctx = trusting_client();
  run([&]() -> Task<void> {
    try {
      co_await connect_tls(server.port(), client_ctx);
      ADD_FAILURE() << "connected to a closed stream";
    } catch (const SSLHandshakeError& e) {
      EXPECT_NE(std::string(e.what()).find("TLS handshake with"), std::string::npos) << e.what();
    }
    try {
      co_await server_handshake;
      ADD_FAILURE() << "handshake on a closed stream succeeded";
    } catch (const SSLHandshakeError& e) {
      EXPECT_EQ(e.real_error, uv_error(UV_ECANCELED));
    }
  });
}

TEST_F(SSLIOStreamTest, ReloadServesNewFilesAndKeepsConnections) {
  TempDir dir;
  SSLServerConfig config{.cert_file = dir.file("server.pem"), .key_file = dir.file("server.key")};
  write_file(config.cert_file, read_file(certs().localhost.cert_file));
  write_file(config.key_file, read_file(certs().localhost.key_file));
  auto server_ctx = SSLContext::server(config);
  TestListener server(loop_, server_ctx, echo_server());
  auto fresh = [] {
    return SSLContext::client({.verify_peer = false, .session_resumption = false});
  };
  auto resuming = trusting_client();
  run([&]() -> Task<void> {
    auto before = co_await connect_tls(server.port(), fresh());
    EXPECT_EQ(common_name(before->peer_certificate()), "localhost");
    auto ticketed = co_await connect_tls(server.port(), resuming);
    co_await expect_round_trip(ticketed, "ticket\n");
    ticketed->close();

    write_file(config.cert_file, read_file(certs().other.cert_file));
    write_file(config.key_file, read_file(certs().other.key_file));
    server_ctx->reload();

    co_await expect_round_trip(before, "still here\n");
    auto after = co_await connect_tls(server.port(), fresh());
    EXPECT_EQ(common_name(after->peer_certificate()), "other.test");
    // Ticket keys survive the reload.
    auto resumed = co_await connect_tls(server.port(), resuming);
    EXPECT_TRUE(resumed->session_reused());
    resumed->close();

    write_file(config.cert_file, "garbage");
    EXPECT_THROW(server_ctx->reload(), SSLContextError);
    auto still = co_await connect_tls(server.port(), fresh());
    EXPECT_EQ(common_name(still->peer_certificate()), "other.test");
    for (auto& s : {before, after, still}) s->close();
  });
}
