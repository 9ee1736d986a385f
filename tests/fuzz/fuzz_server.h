// The application behind the connection targets (HTTP/1 and HTTP/2): a few request
// handlers that exercise the response paths a real application uses, chosen by path.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "fuzz_support.h"
#include "tronada/http/http_connection.h"
#include "tronada/http/http_server_request.h"

namespace fuzz {

/// What the handlers saw, in order, for the target's checks.
struct Seen {
  std::string method;
  std::size_t body_bytes = 0;
};

/// Paths:
///   /stream...  the body is streamed to data_received, the response is chunked in pieces
///   /late...    buffered; the response is written from a later loop iteration
///   /pause...   streamed; pauses the body on the first piece, resumes from the loop
///   /close...   buffered; answers with Connection: close
///   otherwise   buffered; write_response with a Content-Length
/// Each response body names the method and the body length the handler received.
class FuzzServer final : public tronada::HTTPServerDelegate {
 public:
  explicit FuzzServer(tronada::IOLoop& loop) : loop_(loop) {}
  std::vector<Seen> seen;  // requests whose body arrived whole, in order

  tronada::RequestStart start_request(
      const std::shared_ptr<tronada::HTTPServerRequest>& request) override {
    const std::string& p = request->path;
    auto starts = [&](std::string_view prefix) { return p.compare(0, prefix.size(), prefix) == 0; };
    tronada::RequestStart start;
    Mode mode = starts("/stream")  ? Mode::stream
                : starts("/late")  ? Mode::late
                : starts("/pause") ? Mode::pause
                : starts("/close") ? Mode::close
                                   : Mode::plain;
    start.stream_body = mode == Mode::stream || mode == Mode::pause;
    start.delegate = std::make_unique<Message>(*this, request, mode);
    return start;
  }

 private:
  enum class Mode { plain, stream, late, pause, close };

  class Message final : public tronada::HTTPMessageDelegate {
   public:
    Message(FuzzServer& server, std::shared_ptr<tronada::HTTPServerRequest> request, Mode mode)
        : server_(server), request_(std::move(request)), mode_(mode) {}

    void data_received(std::string_view chunk) override {
      streamed_ += chunk.size();
      if (mode_ == Mode::pause && !paused_once_) {
        paused_once_ = true;
        request_->connection->pause_reading();
        server_.loop_.add_callback([req = request_] { req->connection->resume_reading(); });
      }
    }

    void finish() override {
      std::size_t body = request_->body.size() + streamed_;
      server_.seen.push_back({request_->method, body});
      std::string text = request_->method + " " + std::to_string(body) + "\n";
      auto req = request_;
      switch (mode_) {
        case Mode::late:
          server_.loop_.add_callback([req, text] { answer(*req, text, false); });
          break;
        case Mode::stream:
        case Mode::pause: {
          tronada::HTTPHeaders h;
          h.add("Content-Type", "text/plain");
          req->connection->write_headers(200, h);
          for (char c : text) req->connection->write(std::string_view(&c, 1));
          req->connection->finish();
          break;
        }
        case Mode::close:
          answer(*req, text, true);
          break;
        case Mode::plain:
          answer(*req, text, false);
          break;
      }
    }

   private:
    static void answer(tronada::HTTPServerRequest& req, const std::string& text, bool close) {
      tronada::HTTPHeaders h;
      h.add("Content-Type", "text/plain");
      h.add("Content-Length", std::to_string(text.size()));
      if (close) h.add("Connection", "close");
      req.connection->write_response(200, h, text);
    }

    FuzzServer& server_;
    std::shared_ptr<tronada::HTTPServerRequest> request_;
    Mode mode_;
    std::size_t streamed_ = 0;
    bool paused_once_ = false;
  };

  tronada::IOLoop& loop_;
};

}  // namespace fuzz
