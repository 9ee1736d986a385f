#include "tronada/http/http_date.h"

#include <cstdio>
#include <ctime>
#include <string>

namespace tronada {

namespace {
constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

std::size_t format_into(char* out, std::size_t size, std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  int n = std::snprintf(out, size, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday % 7],
                        tm.tm_mday, kMonths[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour,
                        tm.tm_min, tm.tm_sec);
  return n > 0 ? static_cast<std::size_t>(n) : 0;
}
}  // namespace

std::string_view http_date_now() {
  thread_local std::time_t cached_second = 0;
  thread_local char cached[64];
  thread_local std::size_t cached_len = 0;
  // CLOCK_REALTIME_COARSE: a vDSO read without a syscall; second resolution is all
  // the Date header has.
  timespec ts{};
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  if (ts.tv_sec != cached_second) {
    cached_second = ts.tv_sec;
    cached_len = format_into(cached, sizeof cached, ts.tv_sec);
  }
  return std::string_view(cached, cached_len);
}

std::string format_http_date(long long unix_seconds) {
  char buf[64];
  std::size_t n = format_into(buf, sizeof buf, static_cast<std::time_t>(unix_seconds));
  return std::string(buf, n);
}

}  // namespace tronada
