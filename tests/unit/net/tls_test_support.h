// Helpers for the TLS and TCPClient tests: certificates made with the OpenSSL API in a
// temporary directory, a listener accepting with plain libuv (not TCPServer, so these
// tests stand on their own), and a loop drain that asserts nothing was left open.
#pragma once

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <uv.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/loop_check.h"
#include "tronada/async/spawn.h"
#include "tronada/net/iostream.h"
#include "tronada/net/ssl_context.h"
#include "tronada/net/ssl_iostream.h"

namespace tronada::tls_test {

/// A directory under /tmp, removed with its contents.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "tronada-tls-XXXXXX").string();
    if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct CertSpec {
  std::string common_name;
  std::string subject_alt_names;  // "DNS:localhost,IP:127.0.0.1"
  long not_before_days = -1;
  long not_after_days = 365;
};

/// Writes a self-signed certificate (P-256 key, SHA-256) to `<stem>.pem` and its key to
/// `<stem>.key`.
inline SSLCertificateFiles make_self_signed(const TempDir& dir, const std::string& stem,
                                            const CertSpec& spec) {
  static long serial = 1;
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  if (!key) throw std::runtime_error("EVP_PKEY_Q_keygen failed");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  // Distinct serials: a verifier may cache by issuer and serial.
  ASN1_INTEGER_set(X509_get_serialNumber(cert),
                   static_cast<long>(std::time(nullptr) % 1000000) * 1000 + serial++);
  X509_time_adj_ex(X509_getm_notBefore(cert), static_cast<int>(spec.not_before_days), 0, nullptr);
  X509_time_adj_ex(X509_getm_notAfter(cert), static_cast<int>(spec.not_after_days), 0, nullptr);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(spec.common_name.c_str()), -1,
                             -1, 0);
  X509_set_issuer_name(cert, name);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, cert, cert, nullptr, nullptr, 0);
  auto add_ext = [&](int nid, const std::string& value) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str());
    if (!ext) throw std::runtime_error("bad extension " + value);
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  };
  add_ext(NID_basic_constraints, "critical,CA:TRUE");
  add_ext(NID_subject_key_identifier, "hash");
  if (!spec.subject_alt_names.empty()) add_ext(NID_subject_alt_name, spec.subject_alt_names);
  if (X509_sign(cert, key, EVP_sha256()) <= 0) throw std::runtime_error("X509_sign failed");

  SSLCertificateFiles files{dir.file(stem + ".pem"), dir.file(stem + ".key")};
  BIO* out = BIO_new_file(files.cert_file.c_str(), "w");
  PEM_write_bio_X509(out, cert);
  BIO_free(out);
  out = BIO_new_file(files.key_file.c_str(), "w");
  PEM_write_bio_PrivateKey(out, key, nullptr, nullptr, 0, nullptr, nullptr);
  BIO_free(out);
  X509_free(cert);
  EVP_PKEY_free(key);
  return files;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_file(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
}

/// The certificates every test uses, made once per process.
struct Certs {
  TempDir dir;
  SSLCertificateFiles localhost;  // DNS:localhost, IP:127.0.0.1
  SSLCertificateFiles other;      // DNS:other.test
  SSLCertificateFiles wildcard;   // DNS:*.wild.test
  SSLCertificateFiles expired;    // localhost, expired yesterday
  SSLCertificateFiles client;     // a client certificate, its own CA
  std::string trust;              // all of the above, as a CA bundle

  Certs() {
    localhost = make_self_signed(dir, "localhost", {"localhost", "DNS:localhost,IP:127.0.0.1"});
    other = make_self_signed(dir, "other", {"other.test", "DNS:other.test"});
    wildcard = make_self_signed(dir, "wildcard", {"*.wild.test", "DNS:*.wild.test"});
    // A subject of its own: a verifier looks issuers up by name, and finding the
    // other "localhost" first would report a bad signature instead of the expiry.
    expired = make_self_signed(dir, "expired",
                               {"expired.localhost", "DNS:localhost,IP:127.0.0.1", -30, -1});
    client = make_self_signed(dir, "client", {"client", ""});
    trust = dir.file("trust.pem");
    write_file(trust, read_file(localhost.cert_file) + read_file(other.cert_file) +
                          read_file(wildcard.cert_file) + read_file(expired.cert_file) +
                          read_file(client.cert_file));
  }
};

inline const Certs& certs() {
  static Certs instance;
  return instance;
}

inline std::string common_name(X509* cert) {
  if (!cert) return "";
  char buf[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof buf);
  return buf;
}

/// Names a Unix socket path for TestListener.
struct UnixPath {
  std::string path;
};

/// Accepts with plain libuv on 127.0.0.1:<ephemeral>, [::1]:<ephemeral> or a Unix
/// socket, and passes each connection to `on_stream` as an IOStream, or as a server-side
/// SSLIOStream when given a context.
///
/// Lifetime: owns the listening handle (heap-allocated, freed in its close callback);
/// close() or the destructor requests the close.
class TestListener {
 public:
  using OnStream = std::function<void(std::shared_ptr<IOStream>)>;

  TestListener(IOLoop& loop, std::shared_ptr<SSLContext> ctx, OnStream on_stream,
               const char* ip = "127.0.0.1")
      : ctx_(std::move(ctx)), on_stream_(std::move(on_stream)) {
    auto* tcp = new uv_tcp_t;
    uv_tcp_init(loop.uv(), tcp);
    handle_ = reinterpret_cast<uv_stream_t*>(tcp);
    handle_->data = this;
    sockaddr_storage addr{};
    if (std::string(ip).find(':') != std::string::npos) {
      uv_ip6_addr(ip, 0, reinterpret_cast<sockaddr_in6*>(&addr));
    } else {
      uv_ip4_addr(ip, 0, reinterpret_cast<sockaddr_in*>(&addr));
    }
    status_ = uv_tcp_bind(tcp, reinterpret_cast<const sockaddr*>(&addr), 0);
    if (status_ == 0) status_ = uv_listen(handle_, 128, &TestListener::on_connection);
    if (status_ == 0) {
      int len = sizeof addr;
      uv_tcp_getsockname(tcp, reinterpret_cast<sockaddr*>(&addr), &len);
      port_ = ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                                               : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
    }
  }

  TestListener(IOLoop& loop, const UnixPath& unix_path, OnStream on_stream)
      : on_stream_(std::move(on_stream)) {
    auto* pipe = new uv_pipe_t;
    uv_pipe_init(loop.uv(), pipe, 0);
    handle_ = reinterpret_cast<uv_stream_t*>(pipe);
    handle_->data = this;
    status_ = uv_pipe_bind(pipe, unix_path.path.c_str());
    if (status_ == 0) status_ = uv_listen(handle_, 128, &TestListener::on_connection);
  }

  ~TestListener() { close(); }
  TestListener(const TestListener&) = delete;
  TestListener& operator=(const TestListener&) = delete;

  /// 0, or the libuv error binding or listening failed with.
  int status() const { return status_; }
  int port() const { return port_; }

  void close() {
    if (!handle_) return;
    handle_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(handle_), &delete_handle);
    handle_ = nullptr;
  }

 private:
  static void delete_handle(uv_handle_t* h) {
    if (h->type == UV_TCP) {
      delete reinterpret_cast<uv_tcp_t*>(h);
    } else {
      delete reinterpret_cast<uv_pipe_t*>(h);
    }
  }

  static void on_connection(uv_stream_t* server, int status) {
    auto* self = static_cast<TestListener*>(server->data);
    if (!self || status < 0) return;
    uv_stream_t* client;
    if (server->type == UV_TCP) {
      auto* tcp = new uv_tcp_t;
      uv_tcp_init(server->loop, tcp);
      client = reinterpret_cast<uv_stream_t*>(tcp);
    } else {
      auto* pipe = new uv_pipe_t;
      uv_pipe_init(server->loop, pipe, 0);
      client = reinterpret_cast<uv_stream_t*>(pipe);
    }
    if (uv_accept(server, client) != 0) {
      uv_close(reinterpret_cast<uv_handle_t*>(client), &delete_handle);
      return;
    }
    std::shared_ptr<IOStream> stream;
    if (self->ctx_) {
      stream = SSLIOStream::adopt(client, self->ctx_, true);
    } else {
      stream = IOStream::adopt(client);
    }
    self->on_stream_(std::move(stream));
  }

  std::shared_ptr<SSLContext> ctx_;
  OnStream on_stream_;
  uv_stream_t* handle_ = nullptr;
  int status_ = 0;
  int port_ = 0;
};

/// Handles and requests on `loop` that are not the IOLoop's own (its wakeup/check/idle
/// trio and idle timer slots), closing ones included.
inline int busy_count(IOLoop& loop, std::string* names = nullptr) {
  struct Walk {
    IOLoop* loop;
    int count = 0;
    std::string* names;
  } walk{&loop, 0, names};
  uv_walk(
      loop.uv(),
      [](uv_handle_t* h, void* arg) {
        if (h->type == UV_ASYNC || h->type == UV_CHECK || h->type == UV_IDLE ||
            h->type == UV_PREPARE)
          return;
        auto* w = static_cast<Walk*>(arg);
        if (w->loop->is_timer_slot(h) && !uv_is_active(h) && !uv_is_closing(h)) return;
        ++w->count;
        if (w->names) *w->names += std::string(uv_handle_type_name(h->type)) + " ";
      },
      &walk);
  return walk.count + static_cast<int>(loop.uv()->active_reqs.count);
}

/// Ends a test as libuv's MAKE_VALGRIND_HAPPY: runs the loop until every handle of ours
/// has finished closing and every request reported (5 s at most), asserts so, and closes
/// the loop.
inline void drain_and_close(IOLoop& loop) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (busy_count(loop) > 0 && std::chrono::steady_clock::now() < deadline) {
    uv_run(loop.uv(), UV_RUN_NOWAIT);
    if (busy_count(loop) > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::string names;
  EXPECT_EQ(busy_count(loop, &names), 0) << "left open: " << names;
  test_support::expect_clean_close(loop);
}

/// Echoes whatever arrives until the peer closes.
inline Task<void> echo(std::shared_ptr<IOStream> stream) {
  try {
    for (;;) {
      std::string chunk = co_await stream->read_bytes(64 * 1024, true);
      co_await stream->write(std::move(chunk));
    }
  } catch (const StreamClosedError&) {
  }
}

}  // namespace tronada::tls_test
