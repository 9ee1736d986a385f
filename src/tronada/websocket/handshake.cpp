#include "tronada/websocket/handshake.h"

#include <openssl/rand.h>
#include <openssl/sha.h>

#include <stdexcept>

#include "tronada/base/base64.h"

namespace tronada::ws {

std::string accept_key(std::string_view client_key) {
  static constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  std::string input;
  input.reserve(client_key.size() + kGuid.size());
  input.append(client_key);
  input.append(kGuid);
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  return base64_encode(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

bool is_valid_client_key(std::string_view key) {
  auto decoded = base64_decode(key);
  return decoded && decoded->size() == 16;
}

std::string make_client_key() {
  unsigned char raw[16];
  if (RAND_bytes(raw, sizeof raw) != 1) throw std::runtime_error("RAND_bytes failed");
  return base64_encode(std::string_view(reinterpret_cast<const char*>(raw), sizeof raw));
}

bool header_has_token(const HTTPHeaders& headers, std::string_view name, std::string_view token) {
  for (std::string_view line : headers.get_all(name)) {
    while (!line.empty()) {
      auto comma = line.find(',');
      std::string_view item = detail::trim_ows(line.substr(0, comma));
      if (detail::iequals(item, token)) return true;
      if (comma == std::string_view::npos) break;
      line.remove_prefix(comma + 1);
    }
  }
  return false;
}

}  // namespace tronada::ws
