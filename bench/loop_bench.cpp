// loop_bench: the cost of tronada's IOLoop callbacks and timeouts against the same
// workloads written directly on libuv, in one process, interleaved round by round.
//
//   build/bin/loop_bench [--rounds N] [--scale X] [--only NAME]
//
// Workloads (ops per second, higher is better):
//   chain    one callback that re-adds itself N times (one callback per loop iteration,
//            so this is the cost of a loop turn: poll with zero timeout plus dispatch)
//   batch    a driver adds 1000 callbacks at a time, each bumping a counter
//   timers   N timeouts of 0..3 ms scheduled from one callback, counted as they fire
//   churn    timeouts scheduled and cancelled before they fire, 1000 per loop turn
//
// The raw baselines are the simplest honest libuv equivalents: a std::function queue
// drained by a uv_idle_t (which keeps the poll timeout at zero while work is queued, as
// IOLoop's idle handle does) and one heap-allocated uv_timer_t per timeout, closed and
// freed after it fires or is cancelled. Neither baseline locks, logs exceptions or
// tracks handles for cancellation by id; that bookkeeping is what the ratio prices.
//
// Prints a markdown table of medians (min-max in brackets) and tronada/raw.
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "tronada/loop/io_loop.h"

using namespace tronada;
using std::size_t;

namespace {

using SteadyClock = std::chrono::steady_clock;

double seconds_since(SteadyClock::time_point t0) {
  return std::chrono::duration<double>(SteadyClock::now() - t0).count();
}

// Keeps the optimizer from dropping counters that nothing else reads.
volatile size_t g_sink = 0;

// ---------------------------------------------------------------------------------
// Raw libuv: a callback queue drained by a uv_idle_t.

struct RawQueue {
  uv_idle_t idle;
  std::vector<std::function<void()>> queue;
  std::vector<std::function<void()>> running;
  bool active = false;

  explicit RawQueue(uv_loop_t* loop) {
    uv_idle_init(loop, &idle);
    idle.data = this;
  }
  void add(std::function<void()> fn) {
    queue.push_back(std::move(fn));
    if (!active) {
      active = true;
      uv_idle_start(&idle, &RawQueue::on_idle);
    }
  }
  static void on_idle(uv_idle_t* h) {
    auto* self = static_cast<RawQueue*>(h->data);
    self->running.swap(self->queue);
    for (auto& fn : self->running) fn();
    self->running.clear();
    if (self->queue.empty()) {
      self->active = false;
      uv_idle_stop(&self->idle);
    }
  }
  void close() { uv_close(reinterpret_cast<uv_handle_t*>(&idle), nullptr); }
};

// Runs `setup(queue)` on a fresh loop, then the loop until nothing is left to do.
// Returns elapsed seconds (setup included).
template <typename Setup>
double run_raw(Setup setup) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto t0 = SteadyClock::now();
  double elapsed;
  {
    RawQueue q(&loop);
    setup(loop, q);
    uv_run(&loop, UV_RUN_DEFAULT);
    elapsed = seconds_since(t0);
    q.close();
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  if (uv_loop_close(&loop) != 0) {
    std::fprintf(stderr, "loop_bench: raw loop still busy\n");
    std::exit(1);
  }
  return elapsed;
}

struct RawTimer {
  uv_timer_t handle;
};

void close_raw_timer(RawTimer* t) {
  uv_close(reinterpret_cast<uv_handle_t*>(&t->handle),
           [](uv_handle_t* h) { delete reinterpret_cast<RawTimer*>(h); });
}

// ---------------------------------------------------------------------------------
// tronada: each run gets a fresh IOLoop made current for the run.

template <typename Setup>
double run_tronada(Setup setup) {
  IOLoop loop;
  loop.make_current();
  auto t0 = SteadyClock::now();
  setup(loop);
  loop.start();
  double elapsed = seconds_since(t0);
  loop.close();
  return elapsed;
}

// ---------------------------------------------------------------------------------
// chain: a callback re-adding itself.

struct ChainState {
  size_t left;
};

double chain_tronada(size_t n) {
  ChainState s{n};
  struct Step {
    ChainState* s;
    IOLoop* loop;
    void operator()() const {
      if (--s->left == 0) {
        loop->stop();
        return;
      }
      loop->add_callback(*this);
    }
  };
  return n / run_tronada([&](IOLoop& loop) { loop.add_callback(Step{&s, &loop}); });
}

double chain_raw(size_t n) {
  ChainState s{n};
  struct Step {
    ChainState* s;
    RawQueue* q;
    void operator()() const {
      if (--s->left == 0) return;
      q->add(*this);
    }
  };
  return n / run_raw([&](uv_loop_t&, RawQueue& q) { q.add(Step{&s, &q}); });
}

// ---------------------------------------------------------------------------------
// batch: a driver adds kBatch callbacks per loop turn.

constexpr size_t kBatch = 1000;

struct BatchState {
  size_t batches_left;
  size_t count = 0;
};

double batch_tronada(size_t n) {
  BatchState s{std::max<size_t>(1, n / kBatch)};
  size_t total = s.batches_left * kBatch;
  struct Driver {
    BatchState* s;
    IOLoop* loop;
    void operator()() const {
      if (s->batches_left-- == 0) {
        loop->stop();
        return;
      }
      BatchState* st = s;
      for (size_t i = 0; i < kBatch; ++i) loop->add_callback([st] { ++st->count; });
      loop->add_callback(*this);
    }
  };
  double secs = run_tronada([&](IOLoop& loop) { loop.add_callback(Driver{&s, &loop}); });
  g_sink = s.count;
  return total / secs;
}

double batch_raw(size_t n) {
  BatchState s{std::max<size_t>(1, n / kBatch)};
  size_t total = s.batches_left * kBatch;
  struct Driver {
    BatchState* s;
    RawQueue* q;
    void operator()() const {
      if (s->batches_left-- == 0) return;
      BatchState* st = s;
      for (size_t i = 0; i < kBatch; ++i) q->add([st] { ++st->count; });
      q->add(*this);
    }
  };
  double secs = run_raw([&](uv_loop_t&, RawQueue& q) { q.add(Driver{&s, &q}); });
  g_sink = s.count;
  return total / secs;
}

// ---------------------------------------------------------------------------------
// timers: n timeouts of 0..3 ms, scheduled from one callback, counted as they fire.

struct TimerState {
  size_t n;
  size_t fired = 0;
};

double timers_tronada(size_t n) {
  TimerState s{n};
  double secs = run_tronada([&](IOLoop& loop) {
    loop.add_callback([&s, &loop] {
      for (size_t i = 0; i < s.n; ++i) {
        loop.call_later(std::chrono::milliseconds(i % 4), [&s, &loop] {
          if (++s.fired == s.n) loop.stop();
        });
      }
    });
  });
  if (s.fired != n) {
    std::fprintf(stderr, "loop_bench: timers_tronada fired %zu of %zu\n", s.fired, n);
    std::exit(1);
  }
  return n / secs;
}

double timers_raw(size_t n) {
  TimerState s{n};
  double secs = run_raw([&](uv_loop_t& loop, RawQueue& q) {
    loop.data = &s;
    q.add([&s, &loop] {
      for (size_t i = 0; i < s.n; ++i) {
        auto* t = new RawTimer;
        uv_timer_init(&loop, &t->handle);
        uv_timer_start(
            &t->handle,
            [](uv_timer_t* h) {
              ++static_cast<TimerState*>(h->loop->data)->fired;
              close_raw_timer(reinterpret_cast<RawTimer*>(h));
            },
            i % 4, 0);
      }
    });
  });
  if (s.fired != n) {
    std::fprintf(stderr, "loop_bench: timers_raw fired %zu of %zu\n", s.fired, n);
    std::exit(1);
  }
  return n / secs;
}

// ---------------------------------------------------------------------------------
// churn: per loop turn, schedule kBatch timeouts (10..14 ms, so none fires) and cancel
// them all, as a per-operation timeout that the operation beats.

struct ChurnState {
  size_t batches_left;
};

double churn_tronada(size_t n) {
  ChurnState s{std::max<size_t>(1, n / kBatch)};
  size_t total = s.batches_left * kBatch;
  std::vector<TimeoutHandle> handles(kBatch);
  struct Driver {
    ChurnState* s;
    IOLoop* loop;
    std::vector<TimeoutHandle>* handles;
    void operator()() const {
      if (s->batches_left-- == 0) {
        loop->stop();
        return;
      }
      for (size_t i = 0; i < kBatch; ++i) {
        (*handles)[i] = loop->call_later(std::chrono::milliseconds(10 + i % 5), [] {
          std::fprintf(stderr, "loop_bench: a cancelled timeout fired\n");
          std::abort();
        });
      }
      for (size_t i = 0; i < kBatch; ++i) loop->remove_timeout((*handles)[i]);
      loop->add_callback(*this);
    }
  };
  double secs = run_tronada(
      [&](IOLoop& loop) { loop.add_callback(Driver{&s, &loop, &handles}); });
  return total / secs;
}

double churn_raw(size_t n) {
  ChurnState s{std::max<size_t>(1, n / kBatch)};
  size_t total = s.batches_left * kBatch;
  std::vector<RawTimer*> timers(kBatch);
  struct Driver {
    ChurnState* s;
    RawQueue* q;
    uv_loop_t* loop;
    std::vector<RawTimer*>* timers;
    void operator()() const {
      if (s->batches_left-- == 0) return;
      for (size_t i = 0; i < kBatch; ++i) {
        auto* t = new RawTimer;
        uv_timer_init(loop, &t->handle);
        uv_timer_start(
            &t->handle,
            [](uv_timer_t*) {
              std::fprintf(stderr, "loop_bench: a cancelled raw timer fired\n");
              std::abort();
            },
            10 + i % 5, 0);
        (*timers)[i] = t;
      }
      for (size_t i = 0; i < kBatch; ++i) {
        uv_timer_stop(&(*timers)[i]->handle);
        close_raw_timer((*timers)[i]);
      }
      q->add(*this);
    }
  };
  double secs = run_raw(
      [&](uv_loop_t& loop, RawQueue& q) { q.add(Driver{&s, &q, &loop, &timers}); });
  return total / secs;
}

// ---------------------------------------------------------------------------------

struct Workload {
  const char* name;
  const char* what;
  size_t n;
  double (*tronada)(size_t);
  double (*raw)(size_t);
  std::vector<double> tr, rw, ratio;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

std::string fmt_rate(double ops) {
  char buf[64];
  if (ops >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.2f M/s", ops / 1e6);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f k/s", ops / 1e3);
  }
  return buf;
}

std::string fmt_cell(const std::vector<double>& v) {
  auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  double med = median(v);
  char buf[128];
  std::snprintf(buf, sizeof buf, "%s (%s–%s), %.0f ns/op", fmt_rate(med).c_str(),
                fmt_rate(*lo).c_str(), fmt_rate(*hi).c_str(), 1e9 / med);
  return buf;
}

void usage(const char* argv0) {
  std::printf(
      "usage: %s [--rounds N] [--scale X] [--only chain|batch|timers|churn]\n"
      "  --rounds N  interleaved rounds (default 5); medians are reported\n"
      "  --scale X   multiply every workload's size by X (default 1)\n",
      argv0);
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 5;
  double scale = 1.0;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    auto need = [&](const char* flag) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", flag);
        std::exit(2);
      }
      return argv[++i];
    };
    if (!std::strcmp(argv[i], "--rounds")) {
      rounds = std::atoi(need("--rounds"));
    } else if (!std::strcmp(argv[i], "--scale")) {
      scale = std::atof(need("--scale"));
    } else if (!std::strcmp(argv[i], "--only")) {
      only = need("--only");
    } else if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      usage(argv[0]);
      return 0;
    } else {
      std::fprintf(stderr, "unknown argument: %s\n", argv[i]);
      usage(argv[0]);
      return 2;
    }
  }
  if (rounds < 1 || scale <= 0) {
    std::fprintf(stderr, "--rounds must be >= 1 and --scale > 0\n");
    return 2;
  }

  std::vector<Workload> workloads = {
      {"chain", "callback re-adding itself (1 per loop turn)", 300000, chain_tronada,
       chain_raw, {}, {}, {}},
      {"batch", "add_callback in batches of 1000", 3000000, batch_tronada, batch_raw, {},
       {}, {}},
      {"timers", "call_later(0..3 ms), all fired", 200000, timers_tronada, timers_raw, {},
       {}, {}},
      {"churn", "call_later + remove_timeout before firing", 1000000, churn_tronada,
       churn_raw, {}, {}, {}},
  };
  if (!only.empty()) {
    std::erase_if(workloads, [&](const Workload& w) { return only != w.name; });
    if (workloads.empty()) {
      std::fprintf(stderr, "no workload named %s\n", only.c_str());
      return 2;
    }
  }
  for (auto& w : workloads) w.n = std::max<size_t>(kBatch, static_cast<size_t>(w.n * scale));

  // Warm-up: one small run of each so page faults and lazy binding fall outside.
  for (auto& w : workloads) {
    g_sink = static_cast<size_t>(w.tronada(std::max<size_t>(kBatch, w.n / 10)));
    g_sink = static_cast<size_t>(w.raw(std::max<size_t>(kBatch, w.n / 10)));
  }
  // Interleaved: each round runs every workload on both sides, alternating which side
  // goes first so neither always gets the warmer cache.
  for (int r = 0; r < rounds; ++r) {
    for (auto& w : workloads) {
      double t, raw;
      if (r % 2 == 0) {
        t = w.tronada(w.n);
        raw = w.raw(w.n);
      } else {
        raw = w.raw(w.n);
        t = w.tronada(w.n);
      }
      w.tr.push_back(t);
      w.rw.push_back(raw);
      w.ratio.push_back(t / raw);
      std::fprintf(stderr, "round %d %-7s tronada %12.0f/s  raw %12.0f/s  ratio %.2f\n", r + 1,
                   w.name, t, raw, t / raw);
    }
  }

  std::printf("| workload | ops per run | tronada IOLoop | raw libuv | tronada/raw |\n");
  std::printf("| --- | ---: | --- | --- | ---: |\n");
  for (auto& w : workloads) {
    auto [lo, hi] = std::minmax_element(w.ratio.begin(), w.ratio.end());
    std::printf("| `%s`: %s | %zu | %s | %s | **%.2f** (%.2f–%.2f) |\n", w.name, w.what, w.n,
                fmt_cell(w.tr).c_str(), fmt_cell(w.rw).c_str(), median(w.ratio), *lo, *hi);
  }
  std::printf("\nMedians of %d interleaved round%s (min–max in brackets); the ratio column is "
              "the median of the per-round ratios. Goal: tronada/raw ≥ 0.80.\n",
              rounds, rounds == 1 ? "" : "s");
  return 0;
}
