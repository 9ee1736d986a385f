#include "tronada/web/static_file_handler.h"

namespace tronada {

Task<void> StaticFileHandler::get() {
  return serve();
}
Task<void> StaticFileHandler::head() {
  return serve();
}

Task<void> StaticFileHandler::serve() {
  std::string path = "/" + (path_args().empty() ? std::string() : path_args()[0]);
  // StaticFiles writes straight to the connection (large files stream with
  // backpressure); the handler only records the outcome for on_finish and the log. A
  // file the cache knows is answered without a second coroutine.
  std::uint64_t sent = 0;
  int status = files_->serve_cached(request(), path, &sent);
  if (!status) status = co_await files_->serve(shared_request(), std::move(path), &sent);
  complete_elsewhere(status, sent);
}

}  // namespace tronada
