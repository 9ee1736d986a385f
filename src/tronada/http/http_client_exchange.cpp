#include "tronada/http/http_client_exchange.h"

#include <zlib.h>

#include <cstdio>
#include <memory>

#include "tronada/async/spawn.h"
#include "tronada/async/task.h"

namespace tronada::detail {

namespace {

/// Inflates gzip or zlib data (windowBits 32 + 15 detects which).
class Inflater {
 public:
  Inflater() {
    if (inflateInit2(&zs_, 32 + MAX_WBITS) != Z_OK) throw std::bad_alloc();
  }
  ~Inflater() { inflateEnd(&zs_); }
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;

  /// Feeds compressed bytes; `out` gets each decompressed piece. False on corrupt data.
  template <typename Out>
  bool feed(std::string_view in, Out&& out) {
    zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs_.avail_in = static_cast<uInt>(in.size());
    while (zs_.avail_in > 0 && !ended_) {
      zs_.next_out = reinterpret_cast<Bytef*>(buf_);
      zs_.avail_out = sizeof buf_;
      int rc = inflate(&zs_, Z_NO_FLUSH);
      if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) return false;
      std::size_t produced = sizeof buf_ - zs_.avail_out;
      if (produced > 0 && !out(std::string_view(buf_, produced))) return true;
      if (rc == Z_STREAM_END) ended_ = true;
      if (rc == Z_BUF_ERROR && produced == 0) break;
    }
    return true;
  }

 private:
  z_stream zs_{};
  char buf_[16 * 1024];
  bool ended_ = false;
};

class Exchange : public HTTP1ResponseParser::Events, public std::enable_shared_from_this<Exchange> {
 public:
  Exchange(PooledConnection c, ExchangeParams params)
      : conn_(std::move(c)),
        p_(std::move(params)),
        parser_(*this, p_.max_header_size),
        loop_(&conn_.stream().loop()),
        promise_(loop_) {
    if (p_.head_request) parser_.expect_no_body();
  }

  Future<ExchangeResult> start() {
    std::shared_ptr<Exchange> self = shared_from_this();
    IOStream& s = conn_.stream();
    s.set_close_callback([self] { self->on_closed(); });
    s.set_data_handler([self](std::string_view data) { self->on_data(data); });
    if (p_.timeout > Duration::zero()) {
      std::weak_ptr<Exchange> weak = self;
      timer_ = loop_->call_later(p_.timeout, [weak] {
        if (auto e = weak.lock()) {
          e->timer_ = {};
          e->fail(
              std::make_exception_ptr(HTTPTimeoutError("Timeout during request to " + e->p_.peer)));
        }
      });
    }
    if (p_.body_producer) {
      spawn_logged(produce(self), "HTTP client body producer");
    } else {
      std::string_view pieces[4];
      std::size_t n = 0;
      pieces[n++] = p_.head;
      if (p_.framing == BodyFraming::chunked) {
        if (!p_.body.empty()) {
          char size[24];
          std::snprintf(size, sizeof size, "%zx\r\n", p_.body.size());
          chunk_prefix_ = size;
          pieces[n++] = chunk_prefix_;
          pieces[n++] = p_.body;
          pieces[n++] = "\r\n0\r\n\r\n";
        } else {
          pieces[n++] = "0\r\n\r\n";
        }
      } else if (!p_.body.empty()) {
        pieces[n++] = p_.body;
      }
      s.write_pieces(pieces, n);
    }
    return promise_.get_future();
  }

  // --- HTTP1ResponseParser::Events ---
  void on_head(HTTPResponseHead&& head) override {
    if (head.status >= 100 && head.status < 200 && head.status != 101) {
      informational_ = true;
      return;
    }
    // llhttp may go straight on from a 100 Continue to the final response without
    // reporting the 100 as complete: the final head ends the informational phase.
    informational_ = false;
    // RFC 9110 section 15.4.5: a 304 never has a body, whatever Content-Length says
    // (llhttp would wait for one). The parser reads this flag right after on_head.
    if (head.status == 304 || head.status == 204) parser_.expect_no_body();
    head_ = std::move(head);
    head_seen_ = true;
    if (p_.header_callback) {
      std::string line = "HTTP/1." + std::to_string(head_.version_minor) + " " +
                         std::to_string(head_.status) + " " + head_.reason + "\r\n";
      guarded([&] {
        p_.header_callback(line);
        for (const auto& f : head_.headers) p_.header_callback(f.name + ": " + f.value + "\r\n");
        p_.header_callback("\r\n");
      });
    }
    if (p_.decompress && !p_.head_request) {
      if (auto enc = head_.headers.get("Content-Encoding")) {
        std::string e(*enc);
        for (char& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (e == "gzip" || e == "x-gzip" || e == "deflate") {
          inflater_ = std::make_unique<Inflater>();
          head_.headers.remove("Content-Encoding");
          head_.headers.add("X-Consumed-Content-Encoding", e);
        }
      }
    }
  }

  void on_body(std::string_view chunk) override {
    if (body_error_) return;
    if (inflater_) {
      bool ok = inflater_->feed(chunk, [this](std::string_view piece) {
        deliver(piece);
        return !body_error_;
      });
      if (!ok && !body_error_) {
        body_error_ = std::make_exception_ptr(
            HTTPClientError(599, "invalid compressed body from " + p_.peer));
      }
    } else {
      deliver(chunk);
    }
  }

  void on_complete() override {}

 private:
  template <typename F>
  void guarded(F&& f) {
    try {
      f();
    } catch (...) {
      if (!body_error_) body_error_ = std::current_exception();
    }
  }

  void deliver(std::string_view piece) {
    body_bytes_ += piece.size();
    if (body_bytes_ > p_.max_body_size) {
      body_error_ = std::make_exception_ptr(
          HTTPClientError(599, "response body from " + p_.peer + " larger than max_body_size (" +
                                   std::to_string(p_.max_body_size) + " bytes)"));
      return;
    }
    if (p_.streaming_callback) {
      guarded([&] { p_.streaming_callback(piece); });
    } else {
      body_.append(piece);
    }
  }

  static Task<void> produce(std::shared_ptr<Exchange> self) {
    try {
      std::shared_ptr<IOStream> stream = self->conn_.stream_ptr();
      Future<void> head_written = stream->write(self->p_.head);
      co_await head_written;
      bool chunked = self->p_.framing == BodyFraming::chunked;
      std::weak_ptr<IOStream> weak_stream = stream;
      BodyWriter writer = [weak_stream, chunked](std::string chunk) -> Future<void> {
        auto s = weak_stream.lock();
        if (!s || s->closed()) {
          Promise<void> p;
          p.set_exception(std::make_exception_ptr(StreamClosedError()));
          return p.get_future();
        }
        if (chunk.empty()) return make_ready_future<void>();
        if (chunked) {
          char size[24];
          std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
          chunk.insert(0, size);
          chunk += "\r\n";
        }
        s->write(std::move(chunk), [] {});
        // Backpressure: the producer waits while much is queued.
        return s->drain();
      };
      Future<void> produced = self->p_.body_producer(std::move(writer));
      co_await produced;
      if (chunked) {
        Future<void> last = stream->write("0\r\n\r\n");
        co_await last;
      } else {
        Future<void> flushed = stream->write("");
        co_await flushed;
      }
      self->producer_done_ = true;
    } catch (...) {
      self->fail(std::current_exception());
    }
  }

  bool request_sent() const {
    return p_.body_producer ? producer_done_ : conn_ && conn_.stream().write_buffer_size() == 0;
  }

  void on_data(std::string_view data) {
    if (finished_) return;
    received_any_ = true;
    if (!head_seen_) bytes_before_head_ += data.size();
    while (!data.empty() || informational_) {
      std::size_t n = parser_.feed(data);
      if (body_error_) return fail(body_error_);
      if (parser_.failed()) {
        std::string why = parser_.error();
        if (!head_seen_ && bytes_before_head_ > p_.max_header_size) {
          why = "response head larger than " + std::to_string(p_.max_header_size) + " bytes";
        }
        return fail(std::make_exception_ptr(
            HTTPClientError(599, "malformed HTTP response from " + p_.peer + ": " + why)));
      }
      data.remove_prefix(n);
      if (!parser_.complete()) return;
      if (informational_) {
        informational_ = false;
        parser_.reset();
        if (p_.head_request) parser_.expect_no_body();
        continue;
      }
      return complete(!data.empty());
    }
  }

  void on_closed() {
    if (finished_) return;
    parser_.finish_eof();
    if (body_error_) return fail(body_error_);
    if (parser_.complete() && !informational_) return complete(true);
    std::error_code why = conn_ ? conn_.stream().error() : std::error_code();
    std::string reason = why ? " (" + why.message() + ")" : "";
    if (!received_any_ && conn_ && conn_.reused()) {
      return fail(std::make_exception_ptr(StaleConnectionError(
          "kept-alive connection to " + p_.peer + " closed before the response" + reason)));
    }
    fail(std::make_exception_ptr(HTTPStreamClosedError(
        "connection to " + p_.peer + " closed before the response was complete" + reason)));
  }

  // The response is complete; `unusable` if the connection cannot carry another one.
  void complete(bool unusable) {
    if (finished_) return;
    if (p_.body_producer && !producer_done_ && !unusable && parser_.keep_alive()) {
      // The server answered before the body was all sent; a response that early
      // usually means it will not read the rest, so the connection cannot be reused.
      unusable = true;
    }
    bool reusable = !unusable && parser_.keep_alive() && request_sent() && !conn_.stream().closed();
    ExchangeResult result{std::move(head_), std::move(body_)};
    finish(reusable);
    promise_.try_set_result(std::move(result));
  }

  void fail(std::exception_ptr error) {
    if (finished_) return;
    finish(false);
    promise_.try_set_exception(std::move(error));
  }

  void finish(bool reusable) {
    finished_ = true;
    loop_->remove_timeout(timer_);
    // The pool clears our callbacks (or, on release, replaces our data handler with its
    // idle watcher without pausing reads).
    if (reusable) {
      conn_.release();
    } else {
      conn_.discard();
    }
  }

  PooledConnection conn_;
  ExchangeParams p_;
  HTTP1ResponseParser parser_;
  IOLoop* loop_;
  Promise<ExchangeResult> promise_;
  TimeoutHandle timer_;
  HTTPResponseHead head_;
  std::string body_;
  std::string chunk_prefix_;
  std::size_t body_bytes_ = 0;
  std::unique_ptr<Inflater> inflater_;
  std::exception_ptr body_error_;
  bool informational_ = false;
  bool head_seen_ = false;
  std::size_t bytes_before_head_ = 0;
  bool received_any_ = false;
  bool producer_done_ = false;
  bool finished_ = false;
};

}  // namespace

Future<ExchangeResult> run_exchange(PooledConnection connection, ExchangeParams params) {
  auto exchange = std::make_shared<Exchange>(std::move(connection), std::move(params));
  return exchange->start();
}

}  // namespace tronada::detail
