#include "tronada/metrics/exposition.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace tronada::metrics {

namespace {

constexpr const char* kStatusLabels[kStatusClasses] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
constexpr const char* kProtocolLabels[kProtocols] = {"http1", "h2", "websocket"};
constexpr const char* kOutcomeLabels[kUpstreamOutcomes] = {"response", "connect_error", "timeout",
                                                           "error", "rejected"};

/// Writes families in either format: the formats differ in a counter's TYPE/HELP name
/// (OpenMetrics drops `_total` there), the content type and the closing "# EOF".
class Writer {
 public:
  explicit Writer(Format format) : format_(format) {}

  void family(std::string_view name, std::string_view type, std::string_view help) {
    std::string_view declared = name;
    if (format_ == Format::openmetrics && type == "counter" && name.ends_with("_total")) {
      declared = name.substr(0, name.size() - 6);
    }
    out_ += "# HELP ";
    out_ += declared;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += declared;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }

  /// One sample; `labels` is already `name="value",...` (escaped) or empty.
  void sample(std::string_view name, std::string_view labels, double value) {
    out_ += name;
    if (!labels.empty()) {
      out_ += '{';
      out_ += labels;
      out_ += '}';
    }
    out_ += ' ';
    out_ += format_number(value);
    out_ += '\n';
  }

  std::string finish() {
    if (format_ == Format::openmetrics) out_ += "# EOF\n";
    return std::move(out_);
  }

 private:
  Format format_;
  std::string out_;
};

std::string label(std::string_view name, std::string_view value) {
  std::string out(name);
  out += "=\"";
  out += escape_label_value(value);
  out += '"';
  return out;
}

std::string le_label(std::size_t bucket) {
  double bound = bucket < kDurationBounds.size() ? kDurationBounds[bucket] : INFINITY;
  std::string le = format_number(bound);
  // OpenMetrics wants le as a float ("1.0"); the classic format reads either.
  if (le.find_first_of(".eI") == std::string::npos) le += ".0";
  return label("le", le);
}

void histogram(Writer& w, std::string_view name, const std::string& base,
               const std::uint64_t (&buckets)[kBuckets], std::uint64_t sum_ns) {
  std::string bucket_name = std::string(name) + "_bucket";
  std::uint64_t cumulative = 0;
  for (std::size_t b = 0; b < kBuckets; ++b) {
    cumulative += buckets[b];
    w.sample(bucket_name, base + ',' + le_label(b), static_cast<double>(cumulative));
  }
  w.sample(std::string(name) + "_count", base, static_cast<double>(cumulative));
  w.sample(std::string(name) + "_sum", base, static_cast<double>(sum_ns) / 1e9);
}

void render_wsgi(Writer& w, const Snapshot& snapshot) {
  if (snapshot.wsgi_apps.empty()) return;
  w.family("tronada_wsgi_threads", "gauge",
           "WSGI threads by app (MODULE:CALLABLE) and state: busy running a call, or idle.");
  for (const auto& a : snapshot.wsgi_apps) {
    std::string app = label("app", a.app);
    w.sample("tronada_wsgi_threads", app + ',' + label("state", "busy"),
             static_cast<double>(a.busy));
    w.sample("tronada_wsgi_threads", app + ',' + label("state", "idle"),
             static_cast<double>(a.threads > a.busy ? a.threads - a.busy : 0));
  }
  w.family("tronada_wsgi_queue_length", "gauge", "WSGI calls waiting for a free thread now.");
  for (const auto& a : snapshot.wsgi_apps) {
    w.sample("tronada_wsgi_queue_length", label("app", a.app), static_cast<double>(a.queued));
  }
  w.family("tronada_wsgi_queue_wait_seconds", "histogram",
           "Time WSGI calls waited in the queue for a thread.");
  for (const auto& a : snapshot.wsgi_apps) {
    histogram(w, "tronada_wsgi_queue_wait_seconds", label("app", a.app), a.wait_buckets, a.wait_ns);
  }
  w.family("tronada_wsgi_rejected_total", "counter",
           "WSGI requests answered 503: the queue was full or they waited over max_wait.");
  for (const auto& a : snapshot.wsgi_apps) {
    w.sample("tronada_wsgi_rejected_total", label("app", a.app), static_cast<double>(a.rejected));
  }
}

void render_upstreams(Writer& w, const Snapshot& snapshot) {
  if (snapshot.upstreams.empty()) return;
  auto base = [](const Snapshot::Upstream& u) {
    return label("route", u.route) + ',' + label("upstream", u.upstream);
  };
  w.family("tronada_upstream_requests_total", "counter",
           "Tries at a proxy upstream or FastCGI responder, by route, upstream (as "
           "configured) and outcome: response, connect_error, timeout, error, rejected (our "
           "own pool's limits refused it).");
  for (const auto& u : snapshot.upstreams) {
    for (std::size_t o = 0; o < kUpstreamOutcomes; ++o) {
      w.sample("tronada_upstream_requests_total",
               base(u) + ',' + label("outcome", kOutcomeLabels[o]),
               static_cast<double>(u.tries[o]));
    }
  }
  w.family("tronada_upstream_retries_total", "counter",
           "Tries at an upstream that retried a request which failed on an earlier try "
           "(FastCGI: resent on a fresh connection after a kept-alive one was closed).");
  for (const auto& u : snapshot.upstreams) {
    w.sample("tronada_upstream_retries_total", base(u), static_cast<double>(u.retries));
  }
  w.family("tronada_upstream_connect_duration_seconds", "histogram",
           "Time to connect to an upstream (or take a pooled connection), per try that got "
           "a connection.");
  for (const auto& u : snapshot.upstreams) {
    histogram(w, "tronada_upstream_connect_duration_seconds", base(u), u.connect_buckets,
              u.connect_ns);
  }
  w.family("tronada_upstream_response_duration_seconds", "histogram",
           "Time from the start of a try to the upstream response's last byte, per try that "
           "got a whole response.");
  for (const auto& u : snapshot.upstreams) {
    histogram(w, "tronada_upstream_response_duration_seconds", base(u), u.response_buckets,
              u.response_ns);
  }
  w.family("tronada_upstream_healthy", "gauge",
           "1 unless a serving process counts every member of the upstream down (health "
           "check or passive mark); published once a second (proxy upstreams only).");
  for (const auto& u : snapshot.upstreams) {
    if (u.health_publishers == 0) continue;
    w.sample("tronada_upstream_healthy", base(u), u.down == 0 ? 1 : 0);
  }
  w.family("tronada_upstream_connections", "gauge",
           "Connections to an upstream: idle in the pool, or busy with an exchange "
           "(connecting included); published once a second.");
  for (const auto& u : snapshot.upstreams) {
    if (u.publishers == 0) continue;
    w.sample("tronada_upstream_connections", base(u) + ',' + label("state", "idle"),
             static_cast<double>(u.idle));
    w.sample("tronada_upstream_connections", base(u) + ',' + label("state", "busy"),
             static_cast<double>(u.busy));
  }
  w.family("tronada_upstream_dns_lookups_total", "counter",
           "DNS lookups of an upstream's host name that answered (resolve_interval).");
  for (const auto& u : snapshot.upstreams) {
    w.sample("tronada_upstream_dns_lookups_total", base(u), static_cast<double>(u.dns_lookups));
  }
  w.family("tronada_upstream_dns_failures_total", "counter",
           "DNS lookups of an upstream's host name that failed or held no address.");
  for (const auto& u : snapshot.upstreams) {
    w.sample("tronada_upstream_dns_failures_total", base(u), static_cast<double>(u.dns_failures));
  }
  w.family("tronada_upstream_dns_addresses", "gauge",
           "Addresses an upstream's host name resolves to now (0 without discovery).");
  for (const auto& u : snapshot.upstreams) {
    if (u.publishers == 0) continue;
    w.sample("tronada_upstream_dns_addresses", base(u), static_cast<double>(u.dns_addresses));
  }
}

}  // namespace

Format negotiate(std::string_view accept) {
  return accept.find("application/openmetrics-text") != std::string_view::npos ? Format::openmetrics
                                                                               : Format::prometheus;
}

std::string_view content_type(Format format) {
  return format == Format::openmetrics
             ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
             : "text/plain; version=0.0.4; charset=utf-8";
}

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string format_number(double value) {
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (std::isnan(value)) return "NaN";
  char buf[40];
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", value);
    return buf;
  }
  // The shortest %g form that reads back as the same double.
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, value);
    if (std::strtod(buf, nullptr) == value) break;
  }
  return buf;
}

std::string render(const Snapshot& snapshot, const ProcessStats& process, bool ready,
                   Format format) {
  Writer w(format);
  w.family("tronada_http_requests_total", "counter",
           "Requests answered, by route, backend and status class.");
  for (const auto& s : snapshot.series) {
    std::string base = label("route", s.route) + ',' + label("backend", s.backend) + ',';
    for (std::size_t c = 1; c < kStatusClasses; ++c) {
      w.sample("tronada_http_requests_total", base + label("status", kStatusLabels[c]),
               static_cast<double>(s.requests[c]));
    }
    if (s.requests[0]) {
      w.sample("tronada_http_requests_total", base + label("status", kStatusLabels[0]),
               static_cast<double>(s.requests[0]));
    }
  }
  w.family("tronada_http_request_duration_seconds", "histogram",
           "Time from the request's first byte to its response's last, by route.");
  for (const auto& s : snapshot.series) {
    std::string base = label("route", s.route) + ',' + label("backend", s.backend);
    std::uint64_t cumulative = 0;
    for (std::size_t b = 0; b < kBuckets; ++b) {
      cumulative += s.buckets[b];
      double bound = b < kDurationBounds.size() ? kDurationBounds[b] : INFINITY;
      std::string le = format_number(bound);
      // OpenMetrics wants le as a float ("1.0"); the classic format reads either.
      if (le.find_first_of(".eI") == std::string::npos) le += ".0";
      w.sample("tronada_http_request_duration_seconds_bucket", base + ',' + label("le", le),
               static_cast<double>(cumulative));
    }
    w.sample("tronada_http_request_duration_seconds_count", base, static_cast<double>(cumulative));
    w.sample("tronada_http_request_duration_seconds_sum", base,
             static_cast<double>(s.duration_ns) / 1e9);
  }
  w.family("tronada_http_request_body_bytes_total", "counter",
           "Request body bytes received, by route.");
  for (const auto& s : snapshot.series) {
    w.sample("tronada_http_request_body_bytes_total",
             label("route", s.route) + ',' + label("backend", s.backend),
             static_cast<double>(s.bytes_in));
  }
  w.family("tronada_http_response_body_bytes_total", "counter",
           "Response body bytes sent, by route.");
  for (const auto& s : snapshot.series) {
    w.sample("tronada_http_response_body_bytes_total",
             label("route", s.route) + ',' + label("backend", s.backend),
             static_cast<double>(s.bytes_out));
  }
  w.family("tronada_rate_limited_total", "counter",
           "Requests a route's rate limit refused (429), by route.");
  for (const auto& s : snapshot.series) {
    w.sample("tronada_rate_limited_total",
             label("route", s.route) + ',' + label("backend", s.backend),
             static_cast<double>(s.rate_limited));
  }
  w.family("tronada_rate_limit_store_errors_total", "counter",
           "Requests a rate limit decided by on_store_error because its store failed, "
           "timed out or was backing off, by route.");
  for (const auto& s : snapshot.series) {
    w.sample("tronada_rate_limit_store_errors_total",
             label("route", s.route) + ',' + label("backend", s.backend),
             static_cast<double>(s.rate_limit_store_errors));
  }
  render_upstreams(w, snapshot);
  render_wsgi(w, snapshot);
  w.family("tronada_connections_open", "gauge",
           "Client connections open now, by protocol (published once a second).");
  for (std::size_t p = 0; p < kProtocols; ++p) {
    w.sample("tronada_connections_open", label("protocol", kProtocolLabels[p]),
             static_cast<double>(snapshot.connections[p]));
  }
  w.family("tronada_tls_handshakes_total", "counter",
           "TLS handshakes with clients, by result: ok, or failed (bad certificate, no common "
           "protocol or cipher, a plaintext client, a close mid-handshake).");
  w.sample("tronada_tls_handshakes_total", label("result", "ok"),
           static_cast<double>(snapshot.tls_handshakes));
  w.sample("tronada_tls_handshakes_total", label("result", "failed"),
           static_cast<double>(snapshot.tls_handshake_failures));
  w.family("tronada_workers", "gauge",
           "Serving processes by state: live, ready (serving, not draining), draining, "
           "stalled (loop not turning).");
  w.sample("tronada_workers", label("state", "live"), snapshot.live);
  w.sample("tronada_workers", label("state", "ready"), snapshot.ready);
  w.sample("tronada_workers", label("state", "draining"), snapshot.draining);
  w.sample("tronada_workers", label("state", "stalled"), snapshot.stalled);
  w.family("tronada_worker_restarts_total", "counter",
           "Workers the master replaced, by cause: signal (died of a signal it was not sent), "
           "exit (exited by itself), timeout (killed past --timeout), max_requests, "
           "max_memory (recycled), reload (SIGHUP).");
  for (std::size_t c = 0; c < kRestartCauses; ++c) {
    w.sample("tronada_worker_restarts_total", label("cause", kRestartCauseLabels[c]),
             static_cast<double>(snapshot.worker_restarts[c]));
  }
  w.family("tronada_ready", "gauge", "1 while /readyz answers 200.");
  w.sample("tronada_ready", "", ready ? 1 : 0);

  w.family("process_cpu_seconds_total", "counter",
           "User and system CPU time of the server's processes, in seconds.");
  w.sample("process_cpu_seconds_total", "", process.cpu_seconds);
  w.family("process_resident_memory_bytes", "gauge",
           "Resident memory of the server's processes, in bytes.");
  w.sample("process_resident_memory_bytes", "", static_cast<double>(process.resident_bytes));
  w.family("process_virtual_memory_bytes", "gauge",
           "Virtual memory of the server's processes, in bytes.");
  w.sample("process_virtual_memory_bytes", "", static_cast<double>(process.virtual_bytes));
  w.family("process_open_fds", "gauge", "Open file descriptors of the server's processes.");
  w.sample("process_open_fds", "", static_cast<double>(process.open_fds));
  w.family("process_max_fds", "gauge", "Limit on open file descriptors per process.");
  w.sample("process_max_fds", "", static_cast<double>(process.max_fds));
  w.family("process_start_time_seconds", "gauge",
           "Start time of the exporting process since the Unix epoch, in seconds.");
  w.sample("process_start_time_seconds", "", process.start_time_seconds);
  return w.finish();
}

}  // namespace tronada::metrics
