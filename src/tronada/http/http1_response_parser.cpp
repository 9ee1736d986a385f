#include "tronada/http/http1_response_parser.h"

#include <llhttp.h>

#include <exception>
#include <utility>

namespace tronada {

struct HTTP1ResponseParser::Impl {
  llhttp_t parser;
  HTTP1ResponseParser* owner;
  HTTPResponseHead head;
  std::string field, value;
  bool in_value = false;
  std::size_t header_bytes = 0;
  // What an event handler threw, kept while llhttp returns; see rethrow_handler_error().
  std::exception_ptr handler_error;

  static Impl& of(llhttp_t* p) { return *static_cast<Impl*>(p->data); }

  // Calls an event handler from an llhttp callback. An exception must not unwind through
  // llhttp's C frames (undefined behaviour), so it stops the parser with an error instead
  // and feed() or finish_eof() rethrows it once llhttp has returned.
  template <typename Call>
  static int run_event(llhttp_t* p, Call&& call) {
    try {
      call();
      return 0;
    } catch (...) {
      of(p).handler_error = std::current_exception();
      llhttp_set_error_reason(p, "a response event handler threw an exception");
      return -1;
    }
  }

  // Adds the field parsed so far. The value is trimmed in place and its storage moves
  // into the headers: one copy of the value (from llhttp's fragments), where taking a
  // trimmed substring and adding that copied it twice more.
  void flush_field() {
    if (in_value) {
      if (head.headers.empty()) head.headers.reserve(16);  // one allocation for most heads
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
      std::size_t start = value.find_first_not_of(" \t");
      value.erase(0, start == std::string::npos ? value.size() : start);
      head.headers.add_owned(field, std::move(value));
      field.clear();
      value.clear();  // moved from: valid but unspecified
      in_value = false;
    }
  }

  // A parser is made per exchange (each proxied request, each client fetch). Its state
  // goes back to a per-thread list when it is destroyed and the next parser on the
  // thread takes it, the head's field storage with its capacity: with many requests in
  // flight, allocating and freeing it each time misses malloc's per-thread cache (about
  // 2,000 instructions per proxied request).
  static constexpr std::size_t kMaxSpares = 64;

  static std::vector<std::unique_ptr<Impl>>& spares() {
    thread_local std::vector<std::unique_ptr<Impl>> list = [] {
      std::vector<std::unique_ptr<Impl>> l;
      l.reserve(kMaxSpares);  // so that keeping one never allocates
      return l;
    }();
    return list;
  }

  static std::unique_ptr<Impl> take(HTTP1ResponseParser* owner) {
    auto& list = spares();
    if (list.empty()) return std::make_unique<Impl>(owner);
    std::unique_ptr<Impl> impl = std::move(list.back());
    list.pop_back();
    impl->owner = owner;
    return impl;
  }

  static void keep(std::unique_ptr<Impl> impl) noexcept {
    auto& list = spares();
    if (!impl || list.size() >= kMaxSpares) return;
    impl->clear();
    impl->owner = nullptr;
    list.push_back(std::move(impl));  // within the reserved capacity: no allocation
  }

  // Ready for a new response; the head's storage keeps its capacity.
  void clear() noexcept {
    llhttp_init(&parser, HTTP_RESPONSE, &settings());
    parser.data = this;
    head.status = 0;
    head.reason.clear();
    head.version_minor = 1;
    head.headers.clear();
    field.clear();
    value.clear();
    in_value = false;
    header_bytes = 0;
    handler_error = nullptr;
  }

  explicit Impl(HTTP1ResponseParser* o) : owner(o) {
    llhttp_init(&parser, HTTP_RESPONSE, &settings());
    parser.data = this;
  }

  // The callbacks, the same for every parser.
  static const llhttp_settings_t& settings() {
    static const llhttp_settings_t shared = make_settings();
    return shared;
  }

  static llhttp_settings_t make_settings() {
    llhttp_settings_t out;
    llhttp_settings_init(&out);
    out.on_status = [](llhttp_t* p, const char* at, size_t n) {
      of(p).head.reason.append(at, n);
      return 0;
    };
    out.on_header_field = [](llhttp_t* p, const char* at, size_t n) {
      Impl& s = of(p);
      s.flush_field();
      s.field.append(at, n);
      s.header_bytes += n;
      return s.header_bytes > s.owner->max_header_bytes_ ? -1 : 0;
    };
    out.on_header_value = [](llhttp_t* p, const char* at, size_t n) {
      Impl& s = of(p);
      // llhttp reports no field for a line such as ": value"; forwarding it would send
      // a field with an empty name (found by tests/fuzz/http1_response_fuzz).
      if (!s.in_value && s.field.empty()) {
        llhttp_set_error_reason(p, "empty header field name");
        return -1;
      }
      s.in_value = true;
      s.value.append(at, n);
      s.header_bytes += n;
      return s.header_bytes > s.owner->max_header_bytes_ ? -1 : 0;
    };
    out.on_headers_complete = [](llhttp_t* p) {
      Impl& s = of(p);
      // llhttp takes any number as the status ("HTTP/1.1 0 OK"); RFC 9112 says three
      // digits, and nothing below 100 has a meaning (found by tests/fuzz/http1_response_fuzz).
      if (p->status_code < 100 || p->status_code > 999) {
        llhttp_set_error_reason(p, "invalid status code");
        return -1;
      }
      s.flush_field();
      s.head.status = p->status_code;
      s.head.version_minor = p->http_minor;
      s.owner->keep_alive_ = llhttp_should_keep_alive(p);
      if (run_event(p, [&] { s.owner->events_.on_head(std::move(s.head)); }) != 0) return -1;
      // 1 tells llhttp there is no body (a response to HEAD).
      return s.owner->no_body_ ? 1 : 0;
    };
    out.on_body = [](llhttp_t* p, const char* at, size_t n) {
      return run_event(p, [&] { of(p).owner->events_.on_body(std::string_view(at, n)); });
    };
    out.on_message_complete = [](llhttp_t* p) {
      Impl& s = of(p);
      s.owner->complete_ = true;
      s.owner->keep_alive_ = s.owner->keep_alive_ && llhttp_should_keep_alive(p);
      if (run_event(p, [&] { s.owner->events_.on_complete(); }) != 0) {
        s.owner->complete_ = false;
        return -1;
      }
      return static_cast<int>(HPE_PAUSED);
    };
    return out;
  }
};

HTTP1ResponseParser::HTTP1ResponseParser(Events& events, std::size_t max_header_bytes)
    : impl_(Impl::take(this)), events_(events), max_header_bytes_(max_header_bytes) {}

HTTP1ResponseParser::~HTTP1ResponseParser() {
  Impl::keep(std::move(impl_));
}

void HTTP1ResponseParser::reset() {
  impl_->clear();
  error_.clear();
  complete_ = false;
  no_body_ = false;
  keep_alive_ = false;
}

void HTTP1ResponseParser::rethrow_handler_error() {
  if (!impl_->handler_error) return;
  error_ = "a response event handler threw an exception";
  std::rethrow_exception(std::exchange(impl_->handler_error, nullptr));
}

std::size_t HTTP1ResponseParser::feed(std::string_view data) {
  if (complete_ || failed()) return 0;
  llhttp_errno_t err = llhttp_execute(&impl_->parser, data.data(), data.size());
  rethrow_handler_error();
  if (err == HPE_OK) return data.size();
  if (err == HPE_PAUSED) {
    return static_cast<std::size_t>(llhttp_get_error_pos(&impl_->parser) - data.data());
  }
  error_ = llhttp_get_error_reason(&impl_->parser) ? llhttp_get_error_reason(&impl_->parser)
                                                   : llhttp_errno_name(err);
  return static_cast<std::size_t>(llhttp_get_error_pos(&impl_->parser)
                                      ? llhttp_get_error_pos(&impl_->parser) - data.data()
                                      : 0);
}

void HTTP1ResponseParser::finish_eof() {
  if (complete_ || failed()) return;
  llhttp_errno_t err = llhttp_finish(&impl_->parser);
  rethrow_handler_error();
  if (err != HPE_OK && err != HPE_PAUSED) {
    error_ = "connection closed before the response was complete";
  } else if (!complete_) {
    error_ = "connection closed before the response was complete";
  }
}

}  // namespace tronada
