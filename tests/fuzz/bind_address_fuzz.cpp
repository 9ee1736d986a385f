// The bind-address parser (-b/--bind and the config's `bind`): whatever it accepts
// prints, through to_string, as a spelling it reads back to the same address.
#include <cstddef>
#include <cstdint>
#include <stdexcept>

#include "cli/bind_address.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using tronada::cli::BindAddress;
  BindAddress address;
  try {
    address = tronada::cli::parse_bind_address(fuzz::as_view(data, size));
  } catch (const std::invalid_argument&) {
    return 0;  // refused with a message, as documented
  }
  if (address.kind == BindAddress::Kind::unix_socket) {
    FUZZ_CHECK(!address.path.empty() && address.host.empty());
  }
  std::string canonical = address.to_string();
  BindAddress again = tronada::cli::parse_bind_address(canonical);  // must not throw
  FUZZ_CHECK(again == address);
  FUZZ_CHECK(again.to_string() == canonical);
  return 0;
}
