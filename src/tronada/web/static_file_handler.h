// StaticFileHandler: StaticFiles as a RequestHandler, for a rule such as
// Rule("/static/(.*)", handler<StaticFileHandler>(StaticFileOptions{.root = "public"})).
#pragma once

#include <memory>

#include "tronada/web/request_handler.h"
#include "tronada/web/static_files.h"

namespace tronada {

/// Serves the file named by the rule's first group from a directory, with everything
/// StaticFiles does (ETag, Last-Modified, 304, ranges, index files, HEAD, no escape).
class StaticFileHandler : public RequestHandler {
 public:
  /// `files` is shared by every request of the rule.
  void initialize(std::shared_ptr<const StaticFiles> files) { files_ = std::move(files); }
  Task<void> get() override;
  Task<void> head() override;
  std::vector<std::string> allowed_methods() const override { return {"GET", "HEAD"}; }

 private:
  Task<void> serve();
  std::shared_ptr<const StaticFiles> files_;
};

}  // namespace tronada
