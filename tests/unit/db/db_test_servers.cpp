#include "db/db_test_servers.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

namespace tronada::test_support {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string pg_bin_dir() {
  glob_t g{};
  std::string best;
  if (glob("/usr/lib/postgresql/*/bin/postgres", 0, nullptr, &g) == 0) {
    for (std::size_t i = 0; i < g.gl_pathc; ++i) {
      std::string dir = fs::path(g.gl_pathv[i]).parent_path();
      if (access((dir + "/initdb").c_str(), X_OK) == 0 && dir > best) best = dir;
    }
  }
  globfree(&g);
  return best;
}

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// The unprivileged account servers run as when the tests run as root.
struct Account {
  bool switch_user = false;
  uid_t uid = 0;
  gid_t gid = 0;
};

Account server_account() {
  Account a;
  if (geteuid() != 0) return a;
  for (const char* name : {"postgres", "nobody"}) {
    if (passwd* pw = getpwnam(name)) {
      a.switch_user = true;
      a.uid = pw->pw_uid;
      a.gid = pw->pw_gid;
      return a;
    }
  }
  throw std::runtime_error("running as root and no postgres or nobody account to run servers as");
}

// fork + exec with the server's account, its own process group, stdout and stderr into
// `log_path`, and death with the test process. Everything the child needs is prepared
// before fork: the child only makes async-signal-safe calls.
pid_t spawn(const std::vector<std::string>& argv, const std::string& log_path,
            const Account& account) {
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    setsid();
    int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (log >= 0) {
      if (account.switch_user) (void)fchown(log, account.uid, account.gid);
      dup2(log, 1);
      dup2(log, 2);
      close(log);
    }
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    if (account.switch_user) {
      if (setgroups(0, nullptr) != 0 || setgid(account.gid) != 0 || setuid(account.uid) != 0)
        _exit(126);
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

int wait_exit(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void chown_tree(const std::string& path, const Account& account) {
  if (!account.switch_user) return;
  if (chown(path.c_str(), account.uid, account.gid) != 0) throw std::runtime_error("chown " + path);
}

std::string make_temp_dir(const char* prefix) {
  std::string pattern = std::string("/tmp/") + prefix + "XXXXXX";
  if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  return pattern;
}

// A data directory made by initdb once, then copied by every server. Built under an
// exclusive lock into a staging directory and renamed into place, so concurrent test
// processes never see half of one.
std::string pg_template(const std::string& bin, const Account& account) {
  std::string version = fs::path(bin).parent_path().filename();
  std::string path = "/tmp/tronada-pg-template-" + version + "-" + std::to_string(geteuid());
  if (fs::exists(path + "/PG_VERSION")) return path;
  int lock = open((path + ".lock").c_str(), O_CREAT | O_RDWR, 0600);
  if (lock < 0) throw std::runtime_error("cannot open " + path + ".lock");
  flock(lock, LOCK_EX);
  if (!fs::exists(path + "/PG_VERSION")) {
    std::string staging = make_temp_dir("tronada-pg-initdb-");
    chown_tree(staging, account);
    std::string data = staging + "/data";
    pid_t pid = spawn({bin + "/initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8",
                       "--locale=C", "--no-sync", "--no-instructions"},
                      staging + "/initdb.log", account);
    int status = wait_exit(pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::string log = read_file(staging + "/initdb.log");
      fs::remove_all(staging);
      close(lock);
      throw std::runtime_error("initdb failed:\n" + log);
    }
    fs::remove_all(path);
    fs::rename(data, path);
    fs::remove_all(staging);
  }
  close(lock);
  return path;
}

void copy_tree(const std::string& from, const std::string& to) {
  // cp -a keeps owners and modes (postgres insists on a 0700 data directory).
  pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/cp", "cp", "-a", from.c_str(), to.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = wait_exit(pid);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error("cp -a " + from + " failed");
}

void kill_group(pid_t& pid) {
  if (pid <= 0) return;
  ::kill(-pid, SIGKILL);
  ::kill(pid, SIGKILL);
  wait_exit(pid);
  pid = -1;
}

}  // namespace

bool PgTestServer::available() {
  return !pg_bin_dir().empty();
}

PgTestServer::PgTestServer() {
  std::string bin = pg_bin_dir();
  if (bin.empty()) throw std::runtime_error("postgresql is not installed");
  Account account = server_account();
  std::string tmpl = pg_template(bin, account);
  dir_ = make_temp_dir("tronada-pg-");
  chown_tree(dir_, account);
  copy_tree(tmpl, dir_ + "/data");
  start();
}

PgTestServer::~PgTestServer() {
  kill_group(pid_);
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

void PgTestServer::kill() {
  kill_group(pid_);
}

void PgTestServer::start() {
  std::string bin = pg_bin_dir();
  Account account = server_account();
  // Backends of a killed server may still hold its shared memory for a moment; the
  // new postmaster then refuses to start, so try again.
  for (int attempt = 0; attempt < 50; ++attempt) {
    if (port_ == 0) port_ = free_port();
    pid_ = spawn({bin + "/postgres",
                  "-D",
                  dir_ + "/data",
                  "-p",
                  std::to_string(port_),
                  "-k",
                  dir_,
                  "-c",
                  "listen_addresses=127.0.0.1",
                  "-c",
                  "fsync=off",
                  "-c",
                  "synchronous_commit=off",
                  "-c",
                  "full_page_writes=off",
                  "-c",
                  "max_connections=120",
                  "-c",
                  "shared_buffers=16MB",
                  "-c",
                  "log_min_messages=warning"},
                 dir_ + "/server.log", account);
    std::string info = conninfo() + " connect_timeout=2";
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      if (PQping(info.c_str()) == PQPING_OK) return;
      std::this_thread::sleep_for(20ms);
    }
    if (pid_ > 0) break;  // running but never ready: give up
    std::this_thread::sleep_for(100ms);
  }
  kill_group(pid_);
  throw std::runtime_error("postgres did not start:\n" + log());
}

std::string PgTestServer::conninfo() const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " user=postgres dbname=postgres";
}

std::string PgTestServer::socket_conninfo() const {
  return "host=" + dir_ + " port=" + std::to_string(port_) + " user=postgres dbname=postgres";
}

std::string PgTestServer::log() const {
  return read_file(dir_ + "/server.log");
}

bool RedisTestServer::available() {
  return access("/usr/bin/redis-server", X_OK) == 0;
}

RedisTestServer::RedisTestServer() {
  dir_ = make_temp_dir("tronada-redis-");
  chown_tree(dir_, server_account());
  port_ = free_port();
  start();
}

RedisTestServer::~RedisTestServer() {
  kill_group(pid_);
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

void RedisTestServer::kill() {
  kill_group(pid_);
}

void RedisTestServer::start() {
  pid_ = spawn({"/usr/bin/redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", dir_, "--daemonize", "no",
                "--protected-mode", "no", "--loglevel", "warning"},
               dir_ + "/server.log", server_account());
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      const char ping[] = "PING\r\n";
      char buf[16] = {};
      if (write(fd, ping, sizeof ping - 1) == sizeof ping - 1 &&
          read(fd, buf, sizeof buf - 1) > 0 && std::strncmp(buf, "+PONG", 5) == 0) {
        close(fd);
        return;
      }
    }
    close(fd);
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  kill_group(pid_);
  throw std::runtime_error("redis-server did not start:\n" + read_file(dir_ + "/server.log"));
}

}  // namespace tronada::test_support
