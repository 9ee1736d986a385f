// Sec-WebSocket-Extensions values (permessage-deflate negotiation, RFC 7692), as a client
// offers them to our server and as a server answers our client: parse_extensions,
// negotiate_deflate and accept_deflate_response. What the server accepts is an answer its
// own client side accepts, with the same parameters, and the agreed compressors work.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "fuzz_support.h"
#include "tronada/websocket/permessage_deflate.h"

using namespace tronada::ws;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto offers = parse_extensions(fuzz::as_view(data, size));
  if (!offers) return 0;
  for (const ExtensionOffer& offer : *offers) FUZZ_CHECK(!offer.name.empty());

  DeflateOptions mine;
  std::string response;
  std::optional<DeflateParams> agreed = negotiate_deflate(*offers, mine, response);
  if (!agreed) return 0;
  FUZZ_CHECK(agreed->server_max_window_bits >= 9 && agreed->server_max_window_bits <= 15);
  FUZZ_CHECK(agreed->client_max_window_bits >= 8 && agreed->client_max_window_bits <= 15);
  // A client may limit its own window to 8 bits (RFC 7692 allows it) and the server
  // agrees: it inflates with a 9-bit window, which reads such messages. Our own client
  // never offers 8 (zlib cannot deflate with it), so the round trip below cannot apply.
  if (agreed->client_max_window_bits < 9) return 0;

  // Our answer parses, and a client that offered exactly what was accepted takes it.
  auto answer = parse_extensions(response);
  FUZZ_CHECK(answer && answer->size() == 1);
  DeflateOptions client;
  client.server_no_context_takeover = agreed->server_no_context_takeover;
  client.client_no_context_takeover = agreed->client_no_context_takeover;
  client.server_max_window_bits = agreed->server_max_window_bits;
  client.client_max_window_bits = agreed->client_max_window_bits;
  DeflateParams back;
  try {
    back = accept_deflate_response(answer->front(), client);
  } catch (const std::runtime_error& e) {
    std::fprintf(stderr, "our answer '%s' refused: %s\n", response.c_str(), e.what());
    std::abort();
  }
  FUZZ_CHECK(back.server_no_context_takeover == agreed->server_no_context_takeover);
  FUZZ_CHECK(back.client_no_context_takeover == agreed->client_no_context_takeover);

  // One message each way through compressors set up with the agreed parameters.
  PerMessageDeflate server(*agreed, true, mine);
  PerMessageDeflate peer(back, false, client);
  std::string text = "compressed hello, compressed hello, compressed hello";
  std::string out;
  FUZZ_CHECK(peer.decompress(server.compress(text), out, 0) == PerMessageDeflate::Result::kOk);
  FUZZ_CHECK(peer.finish_message(out, 0) == PerMessageDeflate::Result::kOk);
  FUZZ_CHECK(out == text);
  out.clear();
  FUZZ_CHECK(server.decompress(peer.compress(text), out, 0) == PerMessageDeflate::Result::kOk);
  FUZZ_CHECK(server.finish_message(out, 0) == PerMessageDeflate::Result::kOk);
  FUZZ_CHECK(out == text);
  return 0;
}
