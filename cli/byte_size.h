// Sizes as people write them in flags and config files (`--max-body-size 1MiB`).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tronada::cli {

/// Parses a size in bytes: a number, optionally followed by spaces and a unit.
///
/// - no unit or `B`: bytes (`4096`, `0`, `4096B`)
/// - `K`, `M`, `G`, `T` alone: powers of 1024, as in nginx's `client_max_body_size 1m`
/// - `KiB`, `MiB`, `GiB`, `TiB`: powers of 1024 (IEC)
/// - `KB`, `MB`, `GB`, `TB`: powers of 1000 (SI), as Caddy reads them
///
/// Units are case-insensitive (`1k` = `1K` = 1024). A decimal fraction is accepted when the result
/// is a whole number of bytes (`1.5KiB` = 1536, but `1.3KiB` is an error), so a size never rounds
/// silently, least of all down to 0, which callers take to mean "no limit".
/// Throws std::invalid_argument naming the text on a malformed number, an unknown unit, a fraction
/// of a byte, or a value that does not fit in 64 bits.
uint64_t parse_byte_size(std::string_view text);

/// An exact spelling that parse_byte_size reads back to `bytes`, using the unit that leaves the
/// fewest digits: `0`, `1536`, `1KiB`, `1MiB`, `10MB`, `1000KiB`. On a tie IEC wins over SI, since
/// limits are usually powers of two.
std::string format_byte_size(uint64_t bytes);

}  // namespace tronada::cli
