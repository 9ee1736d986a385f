#include "tronada/gateway/wsgi_exchange.h"

#include "tronada/gateway/wsgi_busy_clock.h"

#include "tronada/base/log.h"

namespace tronada {

namespace {
// Response bytes a worker may have queued on the connection before it waits.
constexpr std::size_t kResponseHighWater = 256 * 1024;
}  // namespace

WSGIExchange::WSGIExchange(IOLoop& loop, std::shared_ptr<HTTPServerRequest> request,
                           std::size_t body_high_water, std::function<void(int)> on_done)
    : loop_(loop),
      request_(std::move(request)),
      body_(std::make_shared<WSGIBody>(body_high_water)),
      on_done_(std::move(on_done)) {}

WSGIExchange::~WSGIExchange() = default;

std::shared_ptr<WSGIExchange> WSGIExchange::create(IOLoop& loop,
                                                   std::shared_ptr<HTTPServerRequest> request,
                                                   std::size_t body_high_water,
                                                   std::function<void(int)> on_done) {
  auto self =
      std::make_shared<WSGIExchange>(loop, std::move(request), body_high_water, std::move(on_done));
  // Runs on the reader's thread: resume through the loop, with a weak reference so the
  // body (which the app may keep) neither keeps the exchange alive nor releases it off
  // the loop.
  std::weak_ptr<WSGIExchange> weak = self;
  IOLoop* l = &loop;
  self->body_->set_on_drained([weak, l] {
    l->add_callback([weak] {
      if (auto ex = weak.lock(); ex && ex->paused_) {
        ex->paused_ = false;
        ex->request_->connection->resume_reading();
      }
    });
  });
  return self;
}

void WSGIExchange::body_received(std::string_view chunk) {
  // After the response ended nobody reads the body: buffering it would only grow.
  if (done_) return;
  if (body_->push(chunk) && !paused_) {
    paused_ = true;
    request_->connection->pause_reading();
  }
}

void WSGIExchange::connection_closed() {
  {
    std::lock_guard lock(mutex_);
    gone_ = true;
  }
  credit_.notify_all();
  body_->abort();
}

void WSGIExchange::reject(int status, std::string_view retry_after) {
  HTTPHeaders h;
  h.add("Content-Type", "text/plain; charset=utf-8");
  if (!retry_after.empty()) h.add("Retry-After", retry_after);
  std::string body = status == 503 ? "503 Service Unavailable: all WSGI threads are busy\n"
                                   : std::to_string(status) + "\n";
  h.add("Content-Length", std::to_string(body.size()));
  request_->connection->write_response(status, h, body);
  bytes_sent_ += body.size();
  end(status);
}

bool WSGIExchange::client_gone() const {
  std::lock_guard lock(mutex_);
  return gone_;
}

bool WSGIExchange::send(const WSGIResponseHead* head, std::string data) {
  std::size_t n = data.size();
  {
    std::lock_guard lock(mutex_);
    if (gone_) return false;
    in_flight_ += n;
  }
  std::optional<WSGIResponseHead> h;
  if (head) h = *head;
  loop_.add_callback([self = shared_from_this(), h = std::move(h), data = std::move(data),
                      n]() mutable { self->deliver(std::move(h), std::move(data), n); });
  std::unique_lock lock(mutex_);
  auto drained = [&] { return gone_ || in_flight_ <= kResponseHighWater; };
  if (!drained()) {
    ClientWait waiting;  // a slow reader is not a stuck app (--timeout)
    credit_.wait(lock, drained);
  }
  return !gone_;
}

void WSGIExchange::finish(const WSGIResponseHead* head, std::string data) {
  std::lock_guard lock(mutex_);
  ending_ = Ending::finished;
  if (head) final_head_ = *head;
  final_data_ = std::move(data);
}

void WSGIExchange::abort() {
  std::lock_guard lock(mutex_);
  ending_ = Ending::aborted;
}

void WSGIExchange::complete(std::shared_ptr<WSGIExchange> self) {
  IOLoop& loop = self->loop_;
  loop.add_callback([self = std::move(self)] { self->deliver_final(); });
}

void WSGIExchange::release_credit(std::size_t n) {
  {
    std::lock_guard lock(mutex_);
    in_flight_ -= n;
  }
  credit_.notify_all();
}

void WSGIExchange::deliver(std::optional<WSGIResponseHead> head, std::string data,
                           std::size_t credit) {
  HTTPConnection& conn = *request_->connection;
  try {
    if (head) {
      status_ = head->status;
      if (head->reason) {
        conn.write_headers_with_reason(head->status, *head->reason, head->headers);
      } else {
        conn.write_headers(head->status, head->headers);
      }
    }
    if (!data.empty()) {
      conn.write(data);
      bytes_sent_ += data.size();
    }
  } catch (const std::exception& e) {
    log::error("wsgi", std::string("cannot send the response: ") + e.what());
  }
  Future<void> drained = conn.drain();
  if (drained.done() || conn.closed()) {
    release_credit(credit);
  } else {
    drained.add_done_callback(
        [self = shared_from_this(), credit] { self->release_credit(credit); });
  }
}

void WSGIExchange::deliver_final() {
  HTTPConnection& conn = *request_->connection;
  std::optional<WSGIResponseHead> head;
  std::string data;
  Ending ending;
  {
    std::lock_guard lock(mutex_);
    ending = ending_;
    head = std::move(final_head_);
    data = std::move(final_data_);
  }
  try {
    if (ending == Ending::finished) {
      bytes_sent_ += data.size();
      if (head) {
        status_ = head->status;
        if (head->reason) {
          conn.write_response_with_reason(head->status, *head->reason, head->headers, data);
        } else {
          conn.write_response(head->status, head->headers, data);
        }
      } else {
        if (!data.empty()) conn.write(data);
        conn.finish();
      }
    } else {
      // The app failed mid-body or the client left: the client must see the body cut.
      if (status_ == 0) status_ = 500;
      conn.abort();
    }
  } catch (const std::exception& e) {
    log::error("wsgi", std::string("cannot send the response: ") + e.what());
    conn.finish();
  }
  end(status_);
}

void WSGIExchange::end(int status) {
  if (done_) return;
  done_ = true;
  if (paused_) {
    paused_ = false;
    request_->connection->resume_reading();
  }
  if (on_done_) {
    auto cb = std::move(on_done_);
    on_done_ = nullptr;
    cb(status);
  }
}

}  // namespace tronada
