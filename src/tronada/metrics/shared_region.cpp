#include "tronada/metrics/shared_region.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <new>
#include <system_error>

namespace tronada::metrics {

namespace {

SharedRegion* g_current = nullptr;

// A name's life: free, being written by one process, then fixed forever.
enum : std::uint32_t { kFree = 0, kWriting = 1, kPublished = 2 };

struct SeriesName {
  std::atomic<std::uint32_t> state;
  char route[kRouteLabelBytes];
  char backend[kBackendLabelBytes];
};

struct UpstreamName {
  std::atomic<std::uint32_t> state;
  char route[kRouteLabelBytes];
  char upstream[kUpstreamLabelBytes];
};

struct AppName {
  std::atomic<std::uint32_t> state;
  char app[kAppLabelBytes];
};

struct Slot {
  SlotState state;
  RouteSeries series[kMaxSeries];
  UpstreamSeries upstreams[kMaxUpstreamSeries];
  WSGISeries wsgi[kMaxWSGISeries];
};

bool alive(pid_t pid) {
  return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

void copy_label(char* out, std::size_t room, std::string_view value) {
  std::size_t n = value.size() < room - 1 ? value.size() : room - 1;
  std::memcpy(out, value.data(), n);
  out[n] = '\0';
}

bool same_label(const char* stored, std::size_t room, std::string_view value) {
  if (value.size() > room - 1) value = value.substr(0, room - 1);
  return std::strncmp(stored, value.data(), value.size()) == 0 && stored[value.size()] == '\0';
}

}  // namespace

// The mapping: the name directory, then one Slot per process. mmap zero-fills it, and
// zero is the initial state of every atomic here; create() still constructs each object
// so their lifetimes begin properly.
struct SharedRegion::Layout {
  SeriesName names[kMaxSeries];
  UpstreamName upstream_names[kMaxUpstreamSeries];
  AppName app_names[kMaxWSGISeries];
  std::atomic<std::uint64_t> worker_restarts[kRestartCauses];
  static std::size_t slots_offset() {
    return (sizeof(Layout) + alignof(Slot) - 1) / alignof(Slot) * alignof(Slot);
  }
  static std::size_t bytes(std::size_t slots) { return slots_offset() + slots * sizeof(Slot); }
  Slot* slots() { return reinterpret_cast<Slot*>(reinterpret_cast<char*>(this) + slots_offset()); }
  const Slot* slots() const {
    return reinterpret_cast<const Slot*>(reinterpret_cast<const char*>(this) + slots_offset());
  }
};

std::uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

SharedRegion* current() {
  return g_current;
}

std::unique_ptr<SharedRegion> SharedRegion::create(std::size_t slots) {
  if (slots == 0) slots = 1;
  std::size_t bytes = Layout::bytes(slots);
  void* base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "mmap metrics");
  auto* layout = new (base) Layout;
  for (std::size_t i = 0; i < slots; ++i) new (layout->slots() + i) Slot;
  return std::unique_ptr<SharedRegion>(new SharedRegion(base, bytes, slots));
}

SharedRegion::SharedRegion(void* base, std::size_t bytes, std::size_t slots)
    : base_(base), bytes_(bytes), slots_(slots) {}

SharedRegion::~SharedRegion() {
  if (g_current == this) g_current = nullptr;
  munmap(base_, bytes_);
}

bool SharedRegion::attach() {
  auto* layout = static_cast<Layout*>(base_);
  pid_t me = getpid();
  for (std::size_t i = 0; i < slots_; ++i) {
    SlotState& s = layout->slots()[i].state;
    pid_t owner = s.pid.load(std::memory_order_acquire);
    if (owner == me || (owner != 0 && alive(owner))) continue;
    if (!s.pid.compare_exchange_strong(owner, me, std::memory_order_acq_rel)) continue;
    s.ready.store(0, std::memory_order_relaxed);
    s.draining.store(0, std::memory_order_relaxed);
    for (auto& c : s.connections) c.store(0, std::memory_order_relaxed);
    for (UpstreamSeries& u : layout->slots()[i].upstreams) {
      u.published.store(0, std::memory_order_relaxed);
      for (auto* g : {&u.dns_addresses, &u.members_down, &u.members, &u.idle, &u.busy}) {
        g->store(0, std::memory_order_relaxed);
      }
    }
    for (WSGISeries& w : layout->slots()[i].wsgi) {
      for (auto* g : {&w.threads, &w.busy, &w.queued}) g->store(0, std::memory_order_relaxed);
    }
    s.heartbeat.store(monotonic_ns(), std::memory_order_release);
    own_ = &s;
    own_index_ = i;
    g_current = this;
    return true;
  }
  return false;
}

void SharedRegion::count_worker_restart(RestartCause cause) {
  auto* layout = static_cast<Layout*>(base_);
  layout->worker_restarts[static_cast<std::size_t>(cause)].fetch_add(1, std::memory_order_relaxed);
}

RouteSeries* SharedRegion::series(std::string_view route, std::string_view backend) {
  if (!own_) return nullptr;
  auto* layout = static_cast<Layout*>(base_);
  for (std::size_t i = 0; i < kMaxSeries; ++i) {
    SeriesName& n = layout->names[i];
    std::uint32_t state = n.state.load(std::memory_order_acquire);
    if (state == kFree) {
      if (n.state.compare_exchange_strong(state, kWriting, std::memory_order_acq_rel)) {
        copy_label(n.route, sizeof n.route, route);
        copy_label(n.backend, sizeof n.backend, backend);
        n.state.store(kPublished, std::memory_order_release);
        return &layout->slots()[own_index_].series[i];
      }
    }
    // Another process is writing this name: it takes a few instructions.
    while ((state = n.state.load(std::memory_order_acquire)) == kWriting) {
    }
    if (same_label(n.route, sizeof n.route, route) &&
        same_label(n.backend, sizeof n.backend, backend)) {
      return &layout->slots()[own_index_].series[i];
    }
  }
  return nullptr;
}

UpstreamSeries* SharedRegion::upstream_series(std::string_view route, std::string_view upstream) {
  if (!own_) return nullptr;
  auto* layout = static_cast<Layout*>(base_);
  for (std::size_t i = 0; i < kMaxUpstreamSeries; ++i) {
    UpstreamName& n = layout->upstream_names[i];
    std::uint32_t state = n.state.load(std::memory_order_acquire);
    if (state == kFree) {
      if (n.state.compare_exchange_strong(state, kWriting, std::memory_order_acq_rel)) {
        copy_label(n.route, sizeof n.route, route);
        copy_label(n.upstream, sizeof n.upstream, upstream);
        n.state.store(kPublished, std::memory_order_release);
        return &layout->slots()[own_index_].upstreams[i];
      }
    }
    while ((state = n.state.load(std::memory_order_acquire)) == kWriting) {
    }
    if (same_label(n.route, sizeof n.route, route) &&
        same_label(n.upstream, sizeof n.upstream, upstream)) {
      return &layout->slots()[own_index_].upstreams[i];
    }
  }
  return nullptr;
}

WSGISeries* SharedRegion::wsgi_series(std::string_view app) {
  if (!own_) return nullptr;
  auto* layout = static_cast<Layout*>(base_);
  for (std::size_t i = 0; i < kMaxWSGISeries; ++i) {
    AppName& n = layout->app_names[i];
    std::uint32_t state = n.state.load(std::memory_order_acquire);
    if (state == kFree) {
      if (n.state.compare_exchange_strong(state, kWriting, std::memory_order_acq_rel)) {
        copy_label(n.app, sizeof n.app, app);
        n.state.store(kPublished, std::memory_order_release);
        return &layout->slots()[own_index_].wsgi[i];
      }
    }
    while ((state = n.state.load(std::memory_order_acquire)) == kWriting) {
    }
    if (same_label(n.app, sizeof n.app, app)) return &layout->slots()[own_index_].wsgi[i];
  }
  return nullptr;
}

Snapshot SharedRegion::snapshot(std::uint64_t stall_ns) const {
  const auto* layout = static_cast<const Layout*>(base_);
  Snapshot out;
  std::size_t named = 0;
  while (named < kMaxSeries &&
         layout->names[named].state.load(std::memory_order_acquire) == kPublished) {
    Snapshot::Series s;
    s.route = layout->names[named].route;
    s.backend = layout->names[named].backend;
    out.series.push_back(std::move(s));
    ++named;
  }
  std::size_t upstreams_named = 0;
  while (upstreams_named < kMaxUpstreamSeries && layout->upstream_names[upstreams_named].state.load(
                                                     std::memory_order_acquire) == kPublished) {
    Snapshot::Upstream u;
    u.route = layout->upstream_names[upstreams_named].route;
    u.upstream = layout->upstream_names[upstreams_named].upstream;
    out.upstreams.push_back(std::move(u));
    ++upstreams_named;
  }
  std::size_t apps_named = 0;
  while (apps_named < kMaxWSGISeries &&
         layout->app_names[apps_named].state.load(std::memory_order_acquire) == kPublished) {
    Snapshot::WSGIApp a;
    a.app = layout->app_names[apps_named].app;
    out.wsgi_apps.push_back(std::move(a));
    ++apps_named;
  }
  std::uint64_t now = monotonic_ns();
  constexpr auto relaxed = std::memory_order_relaxed;
  for (std::size_t c = 0; c < kRestartCauses; ++c) {
    out.worker_restarts[c] = layout->worker_restarts[c].load(relaxed);
  }
  for (std::size_t i = 0; i < slots_; ++i) {
    const Slot& slot = layout->slots()[i];
    pid_t pid = slot.state.pid.load(std::memory_order_acquire);
    if (pid == 0) continue;
    for (std::size_t k = 0; k < named; ++k) {
      const RouteSeries& from = slot.series[k];
      Snapshot::Series& to = out.series[k];
      for (std::size_t c = 0; c < kStatusClasses; ++c)
        to.requests[c] += from.requests[c].load(relaxed);
      for (std::size_t b = 0; b < kBuckets; ++b) to.buckets[b] += from.buckets[b].load(relaxed);
      to.duration_ns += from.duration_ns.load(relaxed);
      to.bytes_in += from.bytes_in.load(relaxed);
      to.bytes_out += from.bytes_out.load(relaxed);
      to.rate_limited += from.rate_limited.load(relaxed);
      to.rate_limit_store_errors += from.rate_limit_store_errors.load(relaxed);
    }
    bool live = alive(pid);
    out.tls_handshakes += slot.state.tls_handshakes.load(relaxed);
    out.tls_handshake_failures += slot.state.tls_handshake_failures.load(relaxed);
    for (std::size_t k = 0; k < upstreams_named; ++k) {
      const UpstreamSeries& from = slot.upstreams[k];
      Snapshot::Upstream& to = out.upstreams[k];
      for (std::size_t o = 0; o < kUpstreamOutcomes; ++o)
        to.tries[o] += from.tries[o].load(relaxed);
      to.retries += from.retries.load(relaxed);
      for (std::size_t b = 0; b < kBuckets; ++b) {
        to.connect_buckets[b] += from.connect_buckets[b].load(relaxed);
        to.response_buckets[b] += from.response_buckets[b].load(relaxed);
      }
      to.connect_ns += from.connect_ns.load(relaxed);
      to.response_ns += from.response_ns.load(relaxed);
      to.dns_lookups += from.dns_lookups.load(relaxed);
      to.dns_failures += from.dns_failures.load(relaxed);
      if (!live || !from.published.load(relaxed)) continue;
      ++to.publishers;
      std::int64_t down = from.members_down.load(relaxed);
      std::int64_t members = from.members.load(relaxed);
      if (members > 0) ++to.health_publishers;
      if (down > 0 && down >= members) ++to.down;
      to.dns_addresses = std::max(to.dns_addresses, from.dns_addresses.load(relaxed));
      to.idle += from.idle.load(relaxed);
      to.busy += from.busy.load(relaxed);
    }
    for (std::size_t k = 0; k < apps_named; ++k) {
      const WSGISeries& from = slot.wsgi[k];
      Snapshot::WSGIApp& to = out.wsgi_apps[k];
      for (std::size_t b = 0; b < kBuckets; ++b)
        to.wait_buckets[b] += from.wait_buckets[b].load(relaxed);
      to.wait_ns += from.wait_ns.load(relaxed);
      to.rejected += from.rejected.load(relaxed);
      if (!live) continue;
      to.threads += from.threads.load(relaxed);
      to.busy += from.busy.load(relaxed);
      to.queued += from.queued.load(relaxed);
    }
    if (!live) continue;
    ++out.live;
    out.pids.push_back(pid);
    for (std::size_t p = 0; p < kProtocols; ++p)
      out.connections[p] += slot.state.connections[p].load(relaxed);
    bool draining = slot.state.draining.load(relaxed) != 0;
    if (draining) ++out.draining;
    if (slot.state.ready.load(relaxed) && !draining) ++out.ready;
    std::uint64_t beat = slot.state.heartbeat.load(relaxed);
    if (beat && now > beat && now - beat > stall_ns) ++out.stalled;
  }
  return out;
}

}  // namespace tronada::metrics
