#include "tronada/metrics/process_stats.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>

namespace tronada::metrics {

namespace {

// Seconds since the epoch at which the machine booted: /proc/stat's btime.
double boot_time() {
  std::FILE* f = std::fopen("/proc/stat", "r");
  if (!f) return 0;
  char line[256];
  double btime = 0;
  while (std::fgets(line, sizeof line, f)) {
    unsigned long long v = 0;
    if (std::sscanf(line, "btime %llu", &v) == 1) {
      btime = static_cast<double>(v);
      break;
    }
  }
  std::fclose(f);
  return btime;
}

}  // namespace

ProcessStats read_process_stats(pid_t pid) {
  ProcessStats out;
  std::string dir = "/proc/" + std::to_string(pid);
  if (std::FILE* f = std::fopen((dir + "/stat").c_str(), "r")) {
    char buf[1024];
    std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    buf[n] = '\0';
    // The command name (field 2) may hold spaces and parentheses: parse after the last ')'.
    if (const char* p = std::strrchr(buf, ')')) {
      unsigned long long utime = 0, stime = 0, start = 0, vsize = 0;
      long long rss = 0;
      // Fields 3.. : state ppid pgrp session tty tpgid flags minflt cminflt majflt
      // cmajflt utime stime cutime cstime priority nice threads itrealvalue starttime
      // vsize rss
      if (std::sscanf(p + 2,
                      "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d "
                      "%*d %*d %llu %llu %lld",
                      &utime, &stime, &start, &vsize, &rss) == 5) {
        double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
        out.cpu_seconds = static_cast<double>(utime + stime) / tick;
        out.start_time_seconds = boot_time() + static_cast<double>(start) / tick;
        out.virtual_bytes = vsize;
        out.resident_bytes = static_cast<std::uint64_t>(rss < 0 ? 0 : rss) *
                             static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
      }
    }
  }
  if (DIR* d = opendir((dir + "/fd").c_str())) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') ++out.open_fds;
    }
    closedir(d);
    if (pid == getpid() && out.open_fds > 0) --out.open_fds;  // the one opendir holds
  }
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) out.max_fds = limit.rlim_cur;
  return out;
}

void add_process_stats(ProcessStats& into, const ProcessStats& other) {
  into.cpu_seconds += other.cpu_seconds;
  into.resident_bytes += other.resident_bytes;
  into.virtual_bytes += other.virtual_bytes;
  into.open_fds += other.open_fds;
}

}  // namespace tronada::metrics
