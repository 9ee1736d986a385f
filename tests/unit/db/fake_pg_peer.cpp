#include "db/fake_pg_peer.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace tronada::test_support {
namespace {

std::uint32_t read_u32(int fd) {
  std::uint32_t v;
  read_exact(fd, &v, sizeof v);
  return ntohl(v);
}

void put_u32(std::string& out, std::uint32_t v) {
  v = htonl(v);
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

// A backend message: type byte, length (counting itself), body.
std::string message(char type, const std::string& body) {
  std::string out(1, type);
  put_u32(out, static_cast<std::uint32_t>(body.size() + 4));
  return out + body;
}

std::string cstr(const std::string& s) {
  return s + std::string(1, '\0');
}

}  // namespace

FakePgPeer::FakePgPeer() : thread_([this] { serve(); }) {}

FakePgPeer::~FakePgPeer() {
  listener_.shutdown();  // wakes the accept() the thread waits in
  if (thread_.joinable()) thread_.join();
  for (int fd : clients_)
    if (fd >= 0) ::close(fd);
}

std::string FakePgPeer::conninfo() const {
  return "host=127.0.0.1 port=" + std::to_string(listener_.port()) +
         " user=fake dbname=fake sslmode=disable gssencmode=disable";
}

void FakePgPeer::serve() {
  for (;;) {
    int fd;
    try {
      fd = listener_.accept();
    } catch (const std::exception&) {
      break;  // shut down, or no client came
    }
    std::unique_lock lock(mutex_);
    std::size_t n = clients_.size();
    lock.unlock();
    if (!answer_startup(fd, n)) {
      ::close(fd);
      continue;
    }
    lock.lock();
    clients_.push_back(fd);
    answered_.notify_all();
  }
  std::lock_guard lock(mutex_);
  serving_ = false;
  answered_.notify_all();
}

bool FakePgPeer::answer_startup(int fd, std::size_t client) {
  try {
    for (;;) {
      std::uint32_t length = read_u32(fd);
      std::uint32_t code = read_u32(fd);
      if (code == 80877103 || code == 80877104) {  // SSLRequest, GSSENCRequest: no
        write_all(fd, "N");
        continue;
      }
      if (length < 8 || length > 10000) return false;
      std::string rest(length - 8, '\0');
      read_exact(fd, rest.data(), rest.size());
      break;
    }
    std::string ok;
    put_u32(ok, 0);
    std::string out = message('R', ok);  // AuthenticationOk
    for (const auto& [name, value] : {std::pair<std::string, std::string>{"server_version", "15.0"},
                                      {"client_encoding", "UTF8"},
                                      {"standard_conforming_strings", "on"},
                                      {"integer_datetimes", "on"},
                                      {"DateStyle", "ISO, MDY"}}) {
      out += message('S', cstr(name) + cstr(value));
    }
    std::string key;
    put_u32(key, static_cast<std::uint32_t>(backend_pid(client)));
    put_u32(key, 1);
    out += message('K', key);
    out += message('Z', "I");
    write_all(fd, out);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

int FakePgPeer::client_fd(std::size_t client) {
  std::unique_lock lock(mutex_);
  // The client's connect completed, so its startup was answered; the thread may only
  // not have recorded it yet.
  answered_.wait_for(lock, std::chrono::seconds(30),
                     [&] { return clients_.size() > client || !serving_; });
  if (clients_.size() <= client || clients_[client] < 0)
    throw std::runtime_error("fake pg peer: no such client, or it was hung up on");
  return clients_[client];
}

std::string FakePgPeer::read_statement(std::size_t client) {
  int fd = client_fd(client);
  std::string sql;
  for (;;) {
    char type;
    read_exact(fd, &type, 1);
    std::uint32_t length = read_u32(fd);
    if (length < 4 || length > 1000000) throw std::runtime_error("fake pg peer: bad message");
    std::string body(length - 4, '\0');
    read_exact(fd, body.data(), body.size());
    if (type == 'Q') return body.c_str();
    if (type == 'P') sql = body.c_str() + std::strlen(body.c_str()) + 1;  // name, then SQL
    if (type == 'S') return sql;
  }
}

void FakePgPeer::say_fatal_and_hang_up(const std::string& text, Hangup how, std::size_t client) {
  int fd = client_fd(client);
  write_all(fd, message('E', cstr("SFATAL") + cstr("VFATAL") + cstr("C57P01") + cstr("M" + text) +
                                 std::string(1, '\0')));
  {
    std::lock_guard lock(mutex_);
    clients_[client] = -1;
  }
  hang_up_and_wait_until_seen(fd, how);
}

}  // namespace tronada::test_support
