#include "tronada/net/ssl_context.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <unordered_map>

namespace tronada {

namespace detail {

/// Sessions a client may resume, one per host:port. TLS 1.3 tickets are taken out when
/// used (RFC 8446 C.4: a ticket reused across connections lets observers link them);
/// the server hands out fresh ones on every connection.
class ClientSessionCache {
 public:
  ClientSessionCache() = default;
  ClientSessionCache(const ClientSessionCache&) = delete;
  ClientSessionCache& operator=(const ClientSessionCache&) = delete;
  ~ClientSessionCache() {
    for (auto& [key, session] : sessions_) SSL_SESSION_free(session);
  }

  /// Takes ownership of `session`.
  void put(const std::string& key, SSL_SESSION* session) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto [it, inserted] = sessions_.try_emplace(key, session);
    if (!inserted) {
      SSL_SESSION_free(it->second);
      it->second = session;
    } else if (sessions_.size() > kMaxSessions) {
      // Any victim will do: a lost session costs one full handshake.
      auto victim = sessions_.begin();
      if (victim == it) ++victim;
      SSL_SESSION_free(victim->second);
      sessions_.erase(victim);
    }
  }

  /// A reference the caller frees, or nullptr.
  SSL_SESSION* take(const std::string& key) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sessions_.find(key);
    if (it == sessions_.end()) return nullptr;
    SSL_SESSION* session = it->second;
    if (!SSL_SESSION_is_resumable(session)) {
      SSL_SESSION_free(session);
      sessions_.erase(it);
      return nullptr;
    }
    if (SSL_SESSION_get_protocol_version(session) >= TLS1_3_VERSION) {
      sessions_.erase(it);  // our reference moves to the caller
      return session;
    }
    SSL_SESSION_up_ref(session);
    return session;
  }

 private:
  static constexpr std::size_t kMaxSessions = 1000;
  std::mutex mutex_;
  std::unordered_map<std::string, SSL_SESSION*> sessions_;
};

/// One immutable build of a context. The SSL_CTX callbacks point at it, so every
/// connection keeps the snapshot it was created from alive.
struct SSLContextState {
  SSLContextState() = default;
  SSLContextState(const SSLContextState&) = delete;
  SSLContextState& operator=(const SSLContextState&) = delete;
  ~SSLContextState() {
    for (auto& [name, ctx] : names) SSL_CTX_free(ctx);
    SSL_CTX_free(ctx);
  }

  bool server = false;
  SSL_CTX* ctx = nullptr;                 // the default (and on a client the only) one
  std::map<std::string, SSL_CTX*> names;  // SNI: lowercase exact names and "*.suffix"
  std::string alpn;                       // ALPN protocol list in wire format
  bool verify_peer = false;
  bool check_hostname = false;
  std::shared_ptr<ClientSessionCache> sessions;
};

std::string openssl_errors() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    const char* reason = ERR_reason_error_string(e);
    char buf[256];
    if (!reason) {
      ERR_error_string_n(e, buf, sizeof buf);
      reason = buf;
    }
    if (out.find(reason) != std::string::npos) continue;
    if (!out.empty()) out += "; ";
    out += reason;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

}  // namespace detail

namespace {

using detail::SSLContextState;

// Mozilla's "intermediate" TLS 1.2 suites minus DHE: forward secrecy and AEAD only.
constexpr const char* kModernCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

struct CtxDeleter {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using CtxPtr = std::unique_ptr<SSL_CTX, CtxDeleter>;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// OpenSSL's fallback for encrypted keys prompts on the terminal, which would hang a
// server started by systemd. Refusing makes the load fail with a message instead.
int refuse_password(char*, int, int, void*) {
  return 0;
}

int ssl_key_index() {
  static const int index = SSL_get_ex_new_index(
      0, nullptr, nullptr, nullptr, [](void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
        delete static_cast<std::string*>(ptr);
      });
  return index;
}

void check_readable(const std::string& path, const char* what) {
  if (path.empty()) throw SSLContextError(std::string(what) + " file is not set");
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) {
    throw SSLContextError(std::string("cannot read ") + what + " file " + path + ": " +
                          std::strerror(errno));
  }
  std::fclose(f);
}

int openssl_version(TLSVersion v) {
  return v == TLSVersion::tls1_2 ? TLS1_2_VERSION : TLS1_3_VERSION;
}

std::string alpn_wire(const std::vector<std::string>& protocols) {
  std::string wire;
  for (const auto& p : protocols) {
    if (p.empty() || p.size() > 255) {
      throw SSLContextError("invalid ALPN protocol name \"" + p + "\" (1 to 255 bytes)");
    }
    wire += static_cast<char>(p.size());
    wire += p;
  }
  return wire;
}

CtxPtr new_ctx(bool server, TLSVersion min_version, TLSVersion max_version,
               const std::string& ciphers, const std::string& ciphersuites) {
  ERR_clear_error();
  CtxPtr ctx(SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()));
  if (!ctx) throw SSLContextError("cannot create an SSL_CTX: " + detail::openssl_errors());
  if (openssl_version(min_version) > openssl_version(max_version)) {
    throw SSLContextError("TLS min_version is above max_version");
  }
  SSL_CTX_set_min_proto_version(ctx.get(), openssl_version(min_version));
  SSL_CTX_set_max_proto_version(ctx.get(), openssl_version(max_version));
  // Renegotiation buys nothing over a new connection and has a history of attacks
  // (CVE-2009-3555, CVE-2011-1473); TLS 1.3 removed it.
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  // Idle keep-alive connections give their 16 KiB+ record buffers back.
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_default_passwd_cb(ctx.get(), refuse_password);
  const std::string& list = ciphers.empty() ? std::string(kModernCiphers) : ciphers;
  if (SSL_CTX_set_cipher_list(ctx.get(), list.c_str()) != 1) {
    throw SSLContextError("invalid TLS 1.2 cipher list \"" + list +
                          "\": " + detail::openssl_errors());
  }
  if (!ciphersuites.empty() && SSL_CTX_set_ciphersuites(ctx.get(), ciphersuites.c_str()) != 1) {
    throw SSLContextError("invalid TLS 1.3 cipher suites \"" + ciphersuites +
                          "\": " + detail::openssl_errors());
  }
  return ctx;
}

bool is_key_mismatch(unsigned long e) {
  int reason = ERR_GET_REASON(e);
  return ERR_GET_LIB(e) == ERR_LIB_X509 &&
         (reason == X509_R_KEY_VALUES_MISMATCH || reason == X509_R_KEY_TYPE_MISMATCH);
}

void load_cert_and_key(SSL_CTX* ctx, const std::string& cert_file, const std::string& key_file) {
  check_readable(cert_file, "certificate");
  check_readable(key_file, "private key");
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
    throw SSLContextError("cannot load certificate chain from " + cert_file + ": " +
                          detail::openssl_errors());
  }
  const std::string mismatch =
      "private key " + key_file + " does not match certificate " + cert_file;
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    if (is_key_mismatch(ERR_peek_last_error())) {
      ERR_clear_error();
      throw SSLContextError(mismatch);
    }
    throw SSLContextError("cannot load private key from " + key_file + ": " +
                          detail::openssl_errors());
  }
  // A key of another type (RSA for an ECDSA certificate) is accepted into a slot of its
  // own instead of failing; only checking the pair catches that swap.
  if (SSL_CTX_check_private_key(ctx) != 1) {
    ERR_clear_error();
    throw SSLContextError(mismatch);
  }
}

void load_verify_file(SSL_CTX* ctx, const std::string& file, const char* what) {
  check_readable(file, what);
  ERR_clear_error();
  if (SSL_CTX_load_verify_locations(ctx, file.c_str(), nullptr) != 1) {
    throw SSLContextError(std::string("cannot load ") + what + " file " + file + ": " +
                          detail::openssl_errors());
  }
}

SSL_CTX* find_name(const SSLContextState& st, const std::string& name) {
  auto it = st.names.find(name);
  return it == st.names.end() ? nullptr : it->second;
}

int on_servername(SSL* ssl, int*, void* arg) {
  const auto* st = static_cast<const SSLContextState*>(arg);
  const char* requested = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (!requested || st->names.empty()) return SSL_TLSEXT_ERR_OK;
  std::string name = lower(requested);
  if (!name.empty() && name.back() == '.') name.pop_back();
  SSL_CTX* chosen = find_name(*st, name);
  if (!chosen) {
    auto dot = name.find('.');
    if (dot != std::string::npos && dot > 0) chosen = find_name(*st, "*" + name.substr(dot));
  }
  // No match: the default certificate, as nginx's default_server. Refusing would only
  // trade a certificate warning for a connection error.
  if (chosen && chosen != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, chosen);
  return SSL_TLSEXT_ERR_OK;
}

int on_alpn_select(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                   unsigned int inlen, void* arg) {
  const auto* st = static_cast<const SSLContextState*>(arg);
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(
          &selected, outlen, reinterpret_cast<const unsigned char*>(st->alpn.data()),
          static_cast<unsigned>(st->alpn.size()), in, inlen) != OPENSSL_NPN_NEGOTIATED) {
    // RFC 7301 allows a fatal no_application_protocol alert; going on without ALPN
    // instead lets a client that offers only unknown protocols fall back to HTTP/1.1.
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

int on_new_client_session(SSL* ssl, SSL_SESSION* session) {
  const auto* st = static_cast<const SSLContextState*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
  const auto* key = static_cast<const std::string*>(SSL_get_ex_data(ssl, ssl_key_index()));
  if (!st || !st->sessions || !key) return 0;
  st->sessions->put(*key, session);
  return 1;  // we keep the reference
}

CtxPtr server_ctx(const SSLServerConfig& cfg, const SSLCertificateFiles& files,
                  SSLContextState* st) {
  CtxPtr ctx = new_ctx(true, cfg.min_version, cfg.max_version, cfg.ciphers, cfg.ciphersuites);
  load_cert_and_key(ctx.get(), files.cert_file, files.key_file);
  if (!st->alpn.empty()) SSL_CTX_set_alpn_select_cb(ctx.get(), on_alpn_select, st);
  if (!cfg.client_ca_file.empty()) {
    load_verify_file(ctx.get(), cfg.client_ca_file, "client CA");
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(cfg.client_ca_file.c_str());
    if (!names) {
      throw SSLContextError("no CA certificates in client CA file " + cfg.client_ca_file + ": " +
                            detail::openssl_errors());
    }
    SSL_CTX_set_client_CA_list(ctx.get(), names);
    int mode = SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE;
    if (cfg.require_client_certificate) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx.get(), mode, nullptr);
  }
  // Resumption runs on the context the connection started with, even after SNI picked
  // another; setting it on every context keeps them interchangeable. The session id
  // context is required once client certificates are verified.
  static const unsigned char kSessionContext[] = "tronada";
  SSL_CTX_set_session_id_context(ctx.get(), kSessionContext, sizeof kSessionContext - 1);
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_SERVER);
  SSL_CTX_sess_set_cache_size(ctx.get(), cfg.session_cache_size);
  SSL_CTX_set_timeout(ctx.get(), static_cast<long>(cfg.session_timeout.count()));
  if (!cfg.session_tickets) SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
  return ctx;
}

std::string checked_sni_name(const std::string& name) {
  std::string n = lower(name);
  bool wildcard = n.rfind("*.", 0) == 0;
  std::string rest = wildcard ? n.substr(2) : n;
  bool ok = !rest.empty() && rest.find('*') == std::string::npos && rest.front() != '.' &&
            rest.back() != '.' && rest.find("..") == std::string::npos;
  if (!ok) {
    throw SSLContextError("invalid SNI name \"" + name +
                          "\": expected a host name or \"*.\" followed by one");
  }
  return n;
}

std::shared_ptr<SSLContextState> build_server(const SSLServerConfig& cfg) {
  auto st = std::make_shared<SSLContextState>();
  st->server = true;
  st->alpn = alpn_wire(cfg.alpn_protocols);
  st->ctx = server_ctx(cfg, {cfg.cert_file, cfg.key_file}, st.get()).release();
  for (const auto& [name, files] : cfg.sni_certificates) {
    std::string key = checked_sni_name(name);
    CtxPtr ctx = server_ctx(cfg, files, st.get());
    SSL_CTX*& slot = st->names[key];
    if (slot) SSL_CTX_free(slot);  // "Example.com" and "example.com": the last one wins
    slot = ctx.release();
  }
  if (!st->names.empty()) {
    SSL_CTX_set_tlsext_servername_callback(st->ctx, on_servername);
    SSL_CTX_set_tlsext_servername_arg(st->ctx, st.get());
  }
  return st;
}

std::shared_ptr<SSLContextState> build_client(
    const SSLClientConfig& cfg, std::shared_ptr<detail::ClientSessionCache> sessions) {
  auto st = std::make_shared<SSLContextState>();
  st->verify_peer = cfg.verify_peer;
  st->check_hostname = cfg.verify_peer && cfg.check_hostname;
  st->alpn = alpn_wire(cfg.alpn_protocols);
  CtxPtr ctx = new_ctx(false, cfg.min_version, cfg.max_version, cfg.ciphers, cfg.ciphersuites);
  if (cfg.verify_peer) {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    if (!cfg.ca_file.empty()) {
      load_verify_file(ctx.get(), cfg.ca_file, "CA");
    } else if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1) {
      throw SSLContextError("cannot load the system's CA certificates: " +
                            detail::openssl_errors());
    }
  } else {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  }
  if (!cfg.cert_file.empty() || !cfg.key_file.empty()) {
    load_cert_and_key(ctx.get(), cfg.cert_file, cfg.key_file);
  }
  if (!st->alpn.empty()) {
    // The one OpenSSL setter that returns 0 on success.
    if (SSL_CTX_set_alpn_protos(ctx.get(), reinterpret_cast<const unsigned char*>(st->alpn.data()),
                                static_cast<unsigned>(st->alpn.size())) != 0) {
      throw SSLContextError("cannot set ALPN protocols: " + detail::openssl_errors());
    }
  }
  if (cfg.session_resumption) {
    st->sessions = std::move(sessions);
    // The internal store keys sessions by server session id, useless to a client that
    // must find them by host; we keep them ourselves.
    SSL_CTX_set_session_cache_mode(ctx.get(),
                                   SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx.get(), on_new_client_session);
  }
  SSL_CTX_set_app_data(ctx.get(), st.get());
  st->ctx = ctx.release();
  return st;
}

bool is_ip_literal(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

namespace detail {

SSL* new_ssl(const SSLContextState& st, bool server_side, const std::string& server_hostname,
             const std::string& session_key) {
  if (server_side != st.server) {
    throw std::invalid_argument(server_side ? "server-side TLS stream needs a server SSLContext"
                                            : "client-side TLS stream needs a client SSLContext");
  }
  std::string name = server_hostname;
  if (name.size() > 2 && name.front() == '[' && name.back() == ']')
    name = name.substr(1, name.size() - 2);
  if (!name.empty() && name.back() == '.') name.pop_back();
  bool ip = is_ip_literal(name);
  if (!server_side && st.check_hostname && name.empty()) {
    throw std::invalid_argument(
        "TLS client: server_hostname is required to verify the server's certificate "
        "(or turn off check_hostname in SSLClientConfig)");
  }
  ERR_clear_error();
  std::unique_ptr<SSL, void (*)(SSL*)> ssl(SSL_new(st.ctx), SSL_free);
  if (!ssl) throw SSLContextError("SSL_new failed: " + openssl_errors());
  if (server_side) {
    SSL_set_accept_state(ssl.get());
    return ssl.release();
  }
  SSL_set_connect_state(ssl.get());
  // RFC 6066: SNI carries host names only, never address literals.
  if (!name.empty() && !ip && SSL_set_tlsext_host_name(ssl.get(), name.c_str()) != 1) {
    throw SSLContextError("invalid TLS server name \"" + name + "\": " + openssl_errors());
  }
  if (st.check_hostname) {
    int ok;
    if (ip) {
      ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), name.c_str());
    } else {
      SSL_set_hostflags(ssl.get(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      ok = SSL_set1_host(ssl.get(), name.c_str());
    }
    if (ok != 1) throw SSLContextError("cannot verify TLS server name \"" + name + "\"");
  }
  if (st.sessions && !session_key.empty()) {
    if (SSL_SESSION* session = st.sessions->take(session_key)) {
      SSL_set_session(ssl.get(), session);
      SSL_SESSION_free(session);
    }
    SSL_set_ex_data(ssl.get(), ssl_key_index(), new std::string(session_key));
  }
  return ssl.release();
}

}  // namespace detail

SSLContext::SSLContext(bool server, SSLServerConfig server_config, SSLClientConfig client_config)
    : server_(server),
      server_config_(std::move(server_config)),
      client_config_(std::move(client_config)),
      sessions_(server ? nullptr : std::make_shared<detail::ClientSessionCache>()) {}

SSLContext::~SSLContext() = default;

std::shared_ptr<SSLContext> SSLContext::server(SSLServerConfig config) {
  std::shared_ptr<SSLContext> ctx(new SSLContext(true, std::move(config), {}));
  ctx->state_ = ctx->build();
  return ctx;
}

std::shared_ptr<SSLContext> SSLContext::client(SSLClientConfig config) {
  std::shared_ptr<SSLContext> ctx(new SSLContext(false, {}, std::move(config)));
  ctx->state_ = ctx->build();
  return ctx;
}

std::shared_ptr<const detail::SSLContextState> SSLContext::build() const {
  if (server_) return build_server(server_config_);
  return build_client(client_config_, sessions_);
}

std::shared_ptr<const detail::SSLContextState> SSLContext::snapshot() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return state_;
}

void SSLContext::reload() {
  auto fresh = build();
  auto old = snapshot();
  if (server_ && old) {
    // Carry the ticket keys over: tickets issued before the reload stay valid.
    unsigned char keys[80];
    if (SSL_CTX_get_tlsext_ticket_keys(old->ctx, keys, sizeof keys) == 1) {
      SSL_CTX_set_tlsext_ticket_keys(fresh->ctx, keys, sizeof keys);
    }
    OPENSSL_cleanse(keys, sizeof keys);
  }
  std::lock_guard<std::mutex> lock(mutex_);
  state_ = std::move(fresh);
}

SSL_CTX* SSLContext::native_handle() const {
  return snapshot()->ctx;
}

}  // namespace tronada
