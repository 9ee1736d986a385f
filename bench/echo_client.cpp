// echo_client: load generator for line echo servers (bench/run.py's `echo` workload).
//
//   build/bin/echo_client --port N [--host 127.0.0.1] [-c CONNECTIONS] [-d SECONDS]
//                         [--size BYTES] [--websocket PATH]
//
// Opens CONNECTIONS TCP connections; each sends a SIZE-byte line (newline included),
// waits until the same bytes came back, checks them, and sends the next: one request
// in flight per connection, as wrk does for HTTP. Runs for SECONDS and prints one line
// of JSON: round trips, seconds, round trips per second, latency percentiles (µs) and
// errors. With --websocket PATH each connection first does a WebSocket handshake for
// ws://HOST:PORT/PATH and then sends SIZE-byte binary messages (masked, as clients must)
// and waits for their echo (bench/run.py's `ws-echo` workload). Plain epoll, edge-free and
// single-threaded, so the client costs as little CPU per round trip as a client can (one write and
// one read).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

namespace {

std::uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull + ts.tv_nsec;
}

struct Conn {
  int fd = -1;
  std::size_t got = 0;  // bytes of the current echo received
  std::uint64_t sent_at = 0;
  bool dead = false;
};

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "echo_client: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  int port = 0;
  int connections = 64;
  double duration = 10;
  std::size_t size = 64;
  std::string ws_path;  // empty: line echo
  for (int i = 1; i < argc; ++i) {
    auto need = [&](const char* flag) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", flag);
        std::exit(2);
      }
      return argv[++i];
    };
    std::string a = argv[i];
    if (a == "--host")
      host = need("--host");
    else if (a == "--port")
      port = std::atoi(need("--port"));
    else if (a == "-c" || a == "--connections")
      connections = std::atoi(need("-c"));
    else if (a == "-d" || a == "--duration")
      duration = std::atof(need("-d"));
    else if (a == "--size")
      size = static_cast<std::size_t>(std::atol(need("--size")));
    else if (a == "--websocket")
      ws_path = need("--websocket");
    else {
      std::fprintf(stderr, "usage: %s --port N [--host H] [-c CONNS] [-d SECONDS] [--size BYTES]\n",
                   argv[0]);
      return 2;
    }
  }
  if (port <= 0 || connections <= 0 || duration <= 0 || size < 2) {
    std::fprintf(stderr, "echo_client: need --port, and positive -c, -d, --size >= 2\n");
    return 2;
  }

  // The line: printable bytes that vary with the position, ending in '\n'.
  std::string line(size, 'x');
  for (std::size_t i = 0; i + 1 < size; ++i) line[i] = static_cast<char>('a' + i % 26);
  line[size - 1] = '\n';
  // What goes out and what must come back: the line both ways, or for WebSocket a masked
  // binary frame out and the same payload in an unmasked frame back.
  std::string request = line, expect = line;
  if (!ws_path.empty()) {
    if (size > 125) {
      std::fprintf(stderr, "echo_client: --websocket needs --size <= 125\n");
      return 2;
    }
    const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    request.assign({'\x82', static_cast<char>(0x80 | size)});
    request.append(reinterpret_cast<const char*>(mask), 4);
    for (std::size_t i = 0; i < size; ++i) request += static_cast<char>(line[i] ^ mask[i & 3]);
    expect.assign({'\x82', static_cast<char>(size)});
    expect += line;
  }

  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    std::fprintf(stderr, "echo_client: bad IPv4 address %s\n", host.c_str());
    return 2;
  }

  int ep = epoll_create1(0);
  if (ep < 0) die("epoll_create1");
  std::vector<Conn> conns(static_cast<std::size_t>(connections));
  // Connect blocking (simple, and outside the measured loop), then go non-blocking.
  for (std::size_t i = 0; i < conns.size(); ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (!ws_path.empty()) {
      std::string hs = "GET " + ws_path + " HTTP/1.1\r\nHost: " + host +
                       "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                       "Sec-WebSocket-Version: 13\r\n\r\n";
      if (write(fd, hs.data(), hs.size()) != static_cast<ssize_t>(hs.size())) die("handshake");
      std::string head;
      char c;
      // Byte by byte, so nothing after the head is read here (the server sends nothing
      // more until we do).
      while (head.size() < 4 || head.compare(head.size() - 4, 4, "\r\n\r\n") != 0) {
        if (read(fd, &c, 1) != 1) die("handshake read");
        head += c;
      }
      if (head.compare(0, 12, "HTTP/1.1 101") != 0) {
        std::fprintf(stderr, "echo_client: handshake refused: %s\n", head.c_str());
        return 1;
      }
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    conns[i].fd = fd;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
  }

  std::vector<std::uint32_t> latencies;  // ns, capped at ~4.29 s
  latencies.reserve(1 << 20);
  std::uint64_t round_trips = 0, errors = 0, mismatches = 0;
  std::vector<char> buf(std::max<std::size_t>(size, 65536));
  std::size_t alive = conns.size();

  auto send_line = [&](Conn& c) {
    c.got = 0;
    c.sent_at = now_ns();
    ssize_t n = write(c.fd, request.data(), request.size());
    // A 64-byte write to a socket with an empty send buffer goes out whole; anything
    // else is a broken connection for this benchmark's purposes.
    if (n != static_cast<ssize_t>(request.size())) {
      ++errors;
      c.dead = true;
      --alive;
      close(c.fd);
    }
  };

  const std::uint64_t start = now_ns();
  const std::uint64_t end = start + static_cast<std::uint64_t>(duration * 1e9);
  for (auto& c : conns) send_line(c);
  std::vector<epoll_event> events(conns.size());
  std::uint64_t t = start;
  while (t < end && alive > 0) {
    int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    t = now_ns();
    for (int k = 0; k < n; ++k) {
      Conn& c = conns[events[k].data.u64];
      if (c.dead) continue;
      ssize_t r = read(c.fd, buf.data(), buf.size());
      if (r <= 0) {
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        ++errors;
        c.dead = true;
        --alive;
        close(c.fd);
        continue;
      }
      if (std::memcmp(buf.data(), expect.data() + c.got,
                      std::min<std::size_t>(static_cast<std::size_t>(r), expect.size() - c.got)) !=
              0 ||
          c.got + static_cast<std::size_t>(r) > expect.size()) {
        ++mismatches;
      }
      c.got += static_cast<std::size_t>(r);
      if (c.got >= expect.size()) {
        ++round_trips;
        std::uint64_t lat = t - c.sent_at;
        latencies.push_back(static_cast<std::uint32_t>(std::min<std::uint64_t>(lat, UINT32_MAX)));
        if (t < end) send_line(c);
      }
    }
  }
  double secs = static_cast<double>(now_ns() - start) / 1e9;
  for (auto& c : conns) {
    if (!c.dead) close(c.fd);
  }

  auto pct = [&](double p) -> double {
    if (latencies.empty()) return 0;
    std::size_t idx =
        std::min(latencies.size() - 1, static_cast<std::size_t>(p / 100.0 * latencies.size()));
    std::nth_element(latencies.begin(), latencies.begin() + static_cast<long>(idx),
                     latencies.end());
    return latencies[idx] / 1000.0;
  };
  double p50 = pct(50), p90 = pct(90), p99 = pct(99);
  std::printf(
      "{\"round_trips\": %llu, \"seconds\": %.3f, \"rps\": %.1f, \"p50_us\": %.1f, "
      "\"p90_us\": %.1f, \"p99_us\": %.1f, \"errors\": %llu, \"mismatches\": %llu, "
      "\"connections\": %d, \"size\": %zu}\n",
      static_cast<unsigned long long>(round_trips), secs, round_trips / secs, p50, p90, p99,
      static_cast<unsigned long long>(errors), static_cast<unsigned long long>(mismatches),
      connections, size);
  return errors || mismatches ? 1 : 0;
}
