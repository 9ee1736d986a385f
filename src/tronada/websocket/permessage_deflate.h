// permessage-deflate (RFC 7692): negotiation of its parameters and the per-message
// compressor and decompressor, on zlib.
#pragma once

#include <zlib.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tronada::ws {

/// One element of a Sec-WebSocket-Extensions field: `name; a; b=1`.
struct ExtensionOffer {
  std::string name;
  std::vector<std::pair<std::string, std::optional<std::string>>> params;
};

/// Parses a Sec-WebSocket-Extensions value (RFC 6455 section 9.1, quoted values
/// unquoted). nullopt for a syntax error.
std::optional<std::vector<ExtensionOffer>> parse_extensions(std::string_view value);

/// What one side is willing to do (Tornado's get_compression_options, plus the RFC 7692
/// parameters). Window bits are 9..15: zlib cannot compress raw deflate with 8.
struct DeflateOptions {
  int compression_level = Z_DEFAULT_COMPRESSION;
  int mem_level = 8;
  bool server_no_context_takeover = false;
  bool client_no_context_takeover = false;
  int server_max_window_bits = 15;
  int client_max_window_bits = 15;
  /// Messages shorter than this are sent uncompressed (a frame's RSV1 tells, per message).
  std::size_t min_compress_size = 0;
};

/// The parameters both sides agreed on.
struct DeflateParams {
  bool server_no_context_takeover = false;
  bool client_no_context_takeover = false;
  int server_max_window_bits = 15;
  int client_max_window_bits = 15;
};

/// Server side: picks the first acceptable permessage-deflate offer; sets `response` to
/// the Sec-WebSocket-Extensions value to send. nullopt if none is acceptable (the
/// connection then goes on uncompressed).
std::optional<DeflateParams> negotiate_deflate(const std::vector<ExtensionOffer>& offers,
                                               const DeflateOptions& mine, std::string& response);

/// Client side: the offer to send.
std::string deflate_offer(const DeflateOptions& mine);
/// Client side: checks the server's answer to deflate_offer. Throws std::runtime_error
/// if it is not a valid acceptance (the client must then fail the connection).
DeflateParams accept_deflate_response(const ExtensionOffer& response, const DeflateOptions& mine);

/// The compression state of one connection: a deflate stream for what we send and an
/// inflate stream for what we receive, each reset between messages when the agreed
/// no_context_takeover says so.
class PerMessageDeflate {
 public:
  enum class Result { kOk, kTooBig, kCorrupt };

  PerMessageDeflate(const DeflateParams& params, bool is_server, const DeflateOptions& options);
  ~PerMessageDeflate();
  PerMessageDeflate(const PerMessageDeflate&) = delete;
  PerMessageDeflate& operator=(const PerMessageDeflate&) = delete;

  /// One whole message, compressed, without the trailing 00 00 ff ff (RFC 7692 7.2.1).
  std::string compress(std::string_view message);
  /// A piece of a compressed message; output is appended to `out`, which may grow to
  /// at most `max_size` bytes (0: unlimited).
  Result decompress(std::string_view piece, std::string& out, std::size_t max_size);
  /// The message's end: feeds the stripped tail.
  Result finish_message(std::string& out, std::size_t max_size);
  std::size_t min_compress_size() const { return min_compress_size_; }

 private:
  Result inflate_some(const unsigned char* in, std::size_t len, std::string& out,
                      std::size_t max_size);
  void init_deflate();
  void init_inflate();
  z_stream deflate_{};
  z_stream inflate_{};
  bool reset_deflate_;
  bool reset_inflate_;
  std::size_t min_compress_size_;
  int window_bits_;
  int level_;
  int mem_level_;
  bool deflate_ready_ = false;
  bool inflate_ready_ = false;
};

}  // namespace tronada::ws
