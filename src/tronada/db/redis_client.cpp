#include "tronada/db/redis_client.h"

namespace tronada::redis {

Client::Client(ConnectOptions options) : options_(std::move(options)) {}

Client::~Client() {
  close();
}

void Client::close() {
  if (conn_) conn_->close();
  conn_.reset();
}

Connection& Client::connection() {
  if (!conn_ || !conn_->is_open()) conn_ = Connection::open(options_);
  return *conn_;
}

Future<Reply> Client::command(const std::vector<std::string>& args) {
  return connection().command(args);
}

Future<std::vector<Reply>> Client::pipeline(const std::vector<std::vector<std::string>>& commands) {
  struct Gathered {
    std::vector<Reply> replies;
    std::size_t left = 0;
    std::exception_ptr error;
    Promise<std::vector<Reply>> promise;
  };
  auto gathered = std::make_shared<Gathered>();
  gathered->replies.resize(commands.size());
  gathered->left = commands.size();
  Future<std::vector<Reply>> future = gathered->promise.get_future();
  if (commands.empty()) {
    gathered->promise.set_result();
    return future;
  }
  Connection& conn = connection();
  for (std::size_t i = 0; i < commands.size(); ++i) {
    Future<Reply> f = conn.command_raw(commands[i]);
    f.add_done_callback([gathered, i, state = f.weak_state()] {
      auto s = state.lock();
      if (s && s->exception) {
        if (!gathered->error) gathered->error = s->exception;
      } else if (s) {
        gathered->replies[i] = std::move(*s->value);
      }
      if (--gathered->left == 0) {
        if (gathered->error) {
          gathered->promise.set_exception(gathered->error);
        } else {
          gathered->promise.set_result(std::move(gathered->replies));
        }
      }
    });
  }
  return future;
}

}  // namespace tronada::redis
