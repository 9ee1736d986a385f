// libuv's negative error codes, translated once at the boundary into std::error_code.
#pragma once

#include <stdexcept>
#include <string>
#include <system_error>

namespace tronada {

/// The category of libuv error codes (UV_ECONNRESET, UV_EOF, ...); messages from uv_strerror.
const std::error_category& uv_category();

/// Wraps a negative libuv status; 0 gives an empty error_code.
inline std::error_code uv_error(int status) {
  return status < 0 ? std::error_code(-status, uv_category()) : std::error_code();
}

/// Throws std::system_error with `what` as context if `status` is a libuv error.
void check_uv(int status, const char* what);

/// Raised by an await on an operation that timed out (with_timeout, connect, reads).
class TimeoutError : public std::runtime_error {
 public:
  explicit TimeoutError(const std::string& what = "operation timed out")
      : std::runtime_error(what) {}
};

}  // namespace tronada
