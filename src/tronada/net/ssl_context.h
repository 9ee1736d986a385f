// SSLContext: certificates, keys, protocol versions, ALPN, SNI and peer verification for
// TLS streams, on OpenSSL 3.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace tronada {

/// Raised when a context cannot be built: a certificate, key or CA file that is missing,
/// unreadable, malformed or does not match its partner, or an invalid setting. The
/// message names the file and the reason.
class SSLContextError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Protocol versions we speak. Nothing older than TLS 1.2: 1.0 and 1.1 are broken and
/// deprecated (RFC 8996), and no browser offers them any more.
enum class TLSVersion { tls1_2, tls1_3 };

/// A PEM certificate chain (leaf first, then intermediates) and its PEM private key.
struct SSLCertificateFiles {
  std::string cert_file;
  std::string key_file;
};

/// What a server context is built from.
struct SSLServerConfig {
  /// The default certificate: served when the client sends no SNI or a name that matches
  /// no entry of `sni_certificates`.
  std::string cert_file;
  std::string key_file;
  /// Certificates chosen by the name the client asks for (SNI): an exact name
  /// ("api.example.com") or a wildcard for one label ("*.example.com" matches
  /// "www.example.com", not "example.com" nor "a.b.example.com", as a certificate's own
  /// wildcard does). Exact names win over wildcards. Names are case-insensitive.
  std::map<std::string, SSLCertificateFiles> sni_certificates;
  /// Protocols to select from, in our order of preference (e.g. {"h2", "http/1.1"}).
  /// The first of ours the client also offers wins; with no overlap the handshake goes on
  /// without ALPN, which HTTP clients take as HTTP/1.1.
  std::vector<std::string> alpn_protocols;
  /// Ask clients for a certificate and verify it against these CAs (PEM); empty: don't.
  std::string client_ca_file;
  /// With client_ca_file: fail handshakes of clients that send no certificate. False
  /// accepts them unverified and leaves the decision to the application.
  bool require_client_certificate = true;
  TLSVersion min_version = TLSVersion::tls1_2;
  TLSVersion max_version = TLSVersion::tls1_3;
  /// OpenSSL cipher list for TLS 1.2; empty: ECDHE with AES-GCM or ChaCha20-Poly1305
  /// only (Mozilla's "intermediate" profile without DHE). TLS 1.3 suites are all modern.
  std::string ciphers;
  /// TLS 1.3 suites (SSL_CTX_set_ciphersuites); empty: OpenSSL's default.
  std::string ciphersuites;
  /// Stateless session tickets; the keys survive reload() so tickets stay valid.
  bool session_tickets = true;
  /// Sessions kept in the server-side cache for TLS 1.2 clients without tickets.
  long session_cache_size = 20 * 1024;
  std::chrono::seconds session_timeout{3600};
};

/// What a client context is built from.
struct SSLClientConfig {
  /// Verify the server's certificate chain. Turning it off makes TLS useless against an
  /// active attacker; it exists for tests and for peers pinned by other means.
  bool verify_peer = true;
  /// Check that the certificate names the host we asked for (SSL_set1_host). Requires a
  /// server_hostname on every connection while verify_peer is on.
  bool check_hostname = true;
  /// Trusted CAs (PEM file); empty: the system's (SSL_CTX_set_default_verify_paths).
  std::string ca_file;
  /// Protocols to offer, in our order of preference (e.g. {"h2", "http/1.1"}).
  std::vector<std::string> alpn_protocols;
  /// A client certificate for servers that ask for one; empty: none.
  std::string cert_file;
  std::string key_file;
  TLSVersion min_version = TLSVersion::tls1_2;
  TLSVersion max_version = TLSVersion::tls1_3;
  std::string ciphers;
  std::string ciphersuites;
  /// Remember sessions per host:port and resume them on the next connection.
  bool session_resumption = true;
};

namespace detail {
struct SSLContextState;
class ClientSessionCache;
/// Drains OpenSSL's error queue of this thread into one line ("reason; reason").
std::string openssl_errors();
/// A new SSL for one connection (SSLIOStream's only way in): accept state on a server;
/// on a client connect state with SNI, hostname verification and the session cached
/// under `session_key`. Throws std::invalid_argument for a client that verifies
/// hostnames and got no server_hostname.
SSL* new_ssl(const SSLContextState& state, bool server_side, const std::string& server_hostname,
             const std::string& session_key);
}  // namespace detail

/// TLS settings shared by many connections, wrapping one SSL_CTX (several on a server
/// with SNI certificates). Built once, from a config, and then immutable except for
/// reload(). Held by shared_ptr: every SSLIOStream keeps the snapshot it was created
/// from, so a reload or the context's destruction never pulls settings from under a
/// connection.
///
/// Thread-safety: streams on several loops may share one context; reload() may run on
/// any of them.
class SSLContext {
 public:
  /// Builds a server context. Throws SSLContextError naming the file for a missing,
  /// unreadable or malformed certificate or key, a key that does not match its
  /// certificate, an unreadable CA file, an invalid SNI name or ALPN protocol, or an
  /// invalid cipher list.
  static std::shared_ptr<SSLContext> server(SSLServerConfig config);
  /// Builds a client context. Throws SSLContextError for an unreadable CA file or client
  /// certificate, an invalid ALPN protocol or cipher list.
  static std::shared_ptr<SSLContext> client(SSLClientConfig config = {});

  ~SSLContext();
  SSLContext(const SSLContext&) = delete;
  SSLContext& operator=(const SSLContext&) = delete;

  bool is_server() const { return server_; }

  /// Re-reads every certificate, key and CA file (for SIGHUP after a certificate
  /// renewal). New handshakes use the new files; connections already established, or
  /// handshaking, keep what they started with. All or nothing: on any error this throws
  /// SSLContextError and the context keeps serving the previous files. Session ticket
  /// keys carry over, so clients resume across a reload.
  void reload();

  /// The default SSL_CTX of the current snapshot, for settings this class does not
  /// cover. Borrowed: valid until the next reload() or the context's destruction.
  SSL_CTX* native_handle() const;

 private:
  friend class SSLIOStream;

  SSLContext(bool server, SSLServerConfig server_config, SSLClientConfig client_config);
  std::shared_ptr<const detail::SSLContextState> build() const;
  std::shared_ptr<const detail::SSLContextState> snapshot() const;

  bool server_;
  SSLServerConfig server_config_;
  SSLClientConfig client_config_;
  // Client sessions outlive snapshots: a reload must not forget them.
  std::shared_ptr<detail::ClientSessionCache> sessions_;
  mutable std::mutex mutex_;
  std::shared_ptr<const detail::SSLContextState> state_;
};

}  // namespace tronada
