#include "cli/admin_server.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <system_error>

#include "tronada/metrics/exposition.h"
#include "tronada/net/bind_sockets.h"

namespace tronada::cli {

namespace {

constexpr std::size_t kMaxHead = 8192;
constexpr int kIoTimeoutMs = 2000;
// A loop that has not turned for this long is stuck (the heartbeat ticks every second).
constexpr std::uint64_t kStallNs = 10'000'000'000ull;

AdminServer* g_server = nullptr;  // the one whose socket a forked child must close

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

std::string response(int status, std::string_view reason, std::string_view type,
                     const std::string& body, bool head_only) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + ' ' + std::string(reason) +
                    "\r\nContent-Type: " + std::string(type) +
                    "\r\nContent-Length: " + std::to_string(body.size()) +
                    "\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n";
  if (!head_only) out += body;
  return out;
}

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

std::optional<AdminRequest> parse_admin_request(std::string_view head) {
  std::size_t eol = head.find('\n');
  if (eol == std::string_view::npos) return std::nullopt;
  std::string_view line = trim(head.substr(0, eol));
  std::size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0) return std::nullopt;
  std::size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || sp2 == sp1 + 1) return std::nullopt;
  std::string_view version = line.substr(sp2 + 1);
  if (!version.starts_with("HTTP/1.") || version.size() != 8) return std::nullopt;
  AdminRequest r;
  r.method = std::string(line.substr(0, sp1));
  for (char c : r.method) {
    if (c < 'A' || c > 'Z') return std::nullopt;
  }
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (target.front() != '/') return std::nullopt;
  r.path = std::string(target.substr(0, target.find('?')));
  std::string_view rest = head.substr(eol + 1);
  while (!rest.empty()) {
    std::size_t end = rest.find('\n');
    std::string_view field = trim(rest.substr(0, end));
    rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 1);
    if (field.empty()) break;
    std::size_t colon = field.find(':');
    if (colon == std::string_view::npos || colon == 0) return std::nullopt;
    if (lowercase(field.substr(0, colon)) == "accept") {
      if (!r.accept.empty()) r.accept += ", ";
      r.accept += trim(field.substr(colon + 1));
    }
  }
  return r;
}

bool is_ready(const metrics::Snapshot& s) {
  // `ready` counts only processes that are not draining: a worker being recycled does
  // not make the server unready while its siblings serve, a drain of them all does.
  return s.ready > 0;
}

std::string answer_admin(const std::optional<AdminRequest>& request,
                         const metrics::SharedRegion& region) {
  constexpr std::string_view kText = "text/plain; charset=utf-8";
  if (!request) return response(400, "Bad Request", kText, "bad request\n", false);
  bool head = request->method == "HEAD";
  if (request->method != "GET" && !head) {
    return response(405, "Method Not Allowed", kText, "use GET\n", false);
  }
  metrics::Snapshot snapshot = region.snapshot(kStallNs);
  if (request->path == "/healthz") {
    // Healthy while some process's loop turns; before the first worker reports, the
    // supervisor is starting it (a liveness probe should not kill that).
    if (snapshot.live > 0 && snapshot.stalled == snapshot.live) {
      return response(503, "Service Unavailable", kText, "event loop stalled\n", head);
    }
    return response(200, "OK", kText, "ok\n", head);
  }
  if (request->path == "/readyz") {
    if (is_ready(snapshot)) return response(200, "OK", kText, "ready\n", head);
    std::string why = snapshot.draining > 0 ? "draining\n" : "not ready\n";
    return response(503, "Service Unavailable", kText, why, head);
  }
  if (request->path == "/metrics") {
    metrics::ProcessStats process = metrics::read_process_stats(getpid());
    for (pid_t pid : snapshot.pids) {
      if (pid != getpid()) metrics::add_process_stats(process, metrics::read_process_stats(pid));
    }
    metrics::Format format = metrics::negotiate(request->accept);
    return response(200, "OK", metrics::content_type(format),
                    metrics::render(snapshot, process, is_ready(snapshot), format), head);
  }
  return response(404, "Not Found", kText, "not found: try /metrics, /healthz or /readyz\n", head);
}

AdminServer::AdminServer(const BindAddress& address, const metrics::SharedRegion& region)
    : region_(region), owner_(getpid()) {
  if (address.kind == BindAddress::Kind::unix_socket) {
    listen_fd_ = bind_unix_socket(address.path, 0660);
    unix_path_ = address.path;
    struct stat st {};
    if (::stat(unix_path_.c_str(), &st) == 0) unix_inode_ = st.st_ino;
  } else {
    std::vector<int> fds = bind_sockets(address.port, address.host, BindOptions{.nodelay = true});
    // One address is enough for an admin port: keep the first (e.g. IPv4 of "localhost").
    listen_fd_ = fds.at(0);
    for (std::size_t i = 1; i < fds.size(); ++i) ::close(fds[i]);
  }
  if (::pipe2(wake_, O_CLOEXEC) != 0) {
    ::close(listen_fd_);
    throw std::system_error(errno, std::generic_category(), "pipe");
  }
  static std::once_flag once;
  std::call_once(once, [] { pthread_atfork(nullptr, nullptr, &AdminServer::on_fork_child); });
  g_server = this;
}

void AdminServer::on_fork_child() {
  // A forked worker must not keep the admin port open (it would stay bound after the
  // master exits) and has no copy of the thread.
  if (AdminServer* s = g_server) {
    ::close(s->listen_fd_);
    ::close(s->wake_[0]);
    ::close(s->wake_[1]);
    s->listen_fd_ = s->wake_[0] = s->wake_[1] = -1;
    s->started_ = false;
    g_server = nullptr;
  }
}

AdminServer::~AdminServer() {
  if (g_server == this) g_server = nullptr;
  if (started_ && getpid() == owner_) {
    char c = 0;
    while (::write(wake_[1], &c, 1) < 0 && errno == EINTR) {
    }
    pthread_join(thread_, nullptr);
  }
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (wake_[0] >= 0) ::close(wake_[0]);
  if (wake_[1] >= 0) ::close(wake_[1]);
  // Only the file this process bound: after a binary upgrade the path names the new
  // master's socket, which the old one must leave alone when it exits.
  struct stat st {};
  if (!unix_path_.empty() && getpid() == owner_ && ::stat(unix_path_.c_str(), &st) == 0 &&
      st.st_ino == unix_inode_) {
    ::unlink(unix_path_.c_str());
  }
}

void AdminServer::start() {
  if (started_) return;
  // Signals are for the loop's thread (or the master's wait), never this one: the
  // thread starts with every signal blocked (it inherits the mask).
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  int rc = pthread_create(&thread_, nullptr, &AdminServer::run, this);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (rc != 0) throw std::system_error(rc, std::generic_category(), "admin thread");
  started_ = true;
}

void* AdminServer::run(void* p) {
  auto* self = static_cast<AdminServer*>(p);
  for (;;) {
    pollfd fds[2] = {{self->listen_fd_, POLLIN, 0}, {self->wake_[0], POLLIN, 0}};
    int n = ::poll(fds, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return nullptr;
    }
    if (fds[1].revents) return nullptr;
    if (!(fds[0].revents & POLLIN)) continue;
    int fd = ::accept4(self->listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    self->serve_one(fd);
    ::close(fd);
  }
}

void AdminServer::serve_one(int fd) {
  timeval tv{kIoTimeoutMs / 1000, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  std::string head;
  char buf[2048];
  while (head.size() < kMaxHead) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    head.append(buf, static_cast<std::size_t>(n));
    if (head.find("\r\n\r\n") != std::string::npos || head.find("\n\n") != std::string::npos) {
      write_all(fd, answer_admin(parse_admin_request(head), region_));
      return;
    }
  }
  write_all(fd, answer_admin(std::nullopt, region_));
}

}  // namespace tronada::cli
