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
  int status = files_->serve_cached(*request_, path, &bytes_written_);
  if (!status) status = co_await files_->serve(request_, std::move(path), &bytes_written_);
  status_ = status;
  finished_ = true;
  headers_written_ = true;
  request_->mark_finished();
  on_finish();
  log_request();
}

}  // namespace tronada
