#include "tronada/base/error.h"

#include <uv.h>

namespace tronada {
namespace {

class UvCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "uv"; }
  std::string message(int code) const override { return uv_strerror(-code); }
};

}  // namespace

const std::error_category& uv_category() {
  static const UvCategory category;
  return category;
}

void check_uv(int status, const char* what) {
  if (status < 0) throw std::system_error(uv_error(status), what);
}

}  // namespace tronada
