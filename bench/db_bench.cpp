// Queries per second through the async pg::Pool against the same query made with libpq's
// blocking API from a thread pool of the same size (each thread its own connection).
//
//   db_bench --dsn 'host=127.0.0.1 port=5432 user=postgres' [--size 8] [--queries 20000]
//            [--mode async|blocking|both]
// Prints one line per mode: "<mode> size=N queries=Q seconds=S qps=R".
#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tronada/async/gather.h"
#include "tronada/async/run_sync.h"
#include "tronada/db/pg_pool.h"

using namespace tronada;

namespace {

const char* kQuery = "SELECT $1::int + 1";

Task<void> worker(pg::Pool& pool, std::atomic<long>& left) {
  while (left.fetch_sub(1) > 0) {
    Task<pg::Result> q = pool.query(kQuery, 41);
    pg::Result r = co_await std::move(q);
    if (r.scalar<int>() != 42) std::abort();
  }
}

double run_async(const std::string& dsn, std::size_t size, long queries) {
  pg::Pool pool({.conninfo = dsn, .max_size = size});
  std::atomic<long> left{queries};
  auto start = std::chrono::steady_clock::now();
  run_sync([&]() -> Task<void> {
    // More callers than connections, as a server's handlers would be.
    std::vector<Task<void>> workers;
    for (std::size_t i = 0; i < size * 4; ++i) workers.push_back(worker(pool, left));
    co_await gather(std::move(workers));
  });
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  pool.close();
  return seconds;
}

double run_blocking(const std::string& dsn, std::size_t size, long queries) {
  std::atomic<long> left{queries};
  std::vector<PGconn*> conns;
  for (std::size_t i = 0; i < size; ++i) {
    PGconn* c = PQconnectdb(dsn.c_str());
    if (PQstatus(c) != CONNECTION_OK) {
      std::fprintf(stderr, "connect: %s", PQerrorMessage(c));
      std::exit(1);
    }
    conns.push_back(c);
  }
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (PGconn* c : conns) {
    threads.emplace_back([c, &left] {
      const char* values[1] = {"41"};
      while (left.fetch_sub(1) > 0) {
        PGresult* r = PQexecParams(c, kQuery, 1, nullptr, values, nullptr, nullptr, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK || std::strcmp(PQgetvalue(r, 0, 0), "42") != 0)
          std::abort();
        PQclear(r);
      }
    });
  }
  for (auto& t : threads) t.join();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (PGconn* c : conns) PQfinish(c);
  return seconds;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dsn, mode = "both";
  std::size_t size = 8;
  long queries = 20000;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--dsn")
      dsn = argv[i + 1];
    else if (flag == "--size")
      size = static_cast<std::size_t>(std::atoi(argv[i + 1]));
    else if (flag == "--queries")
      queries = std::atol(argv[i + 1]);
    else if (flag == "--mode")
      mode = argv[i + 1];
    else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  if (dsn.empty() || size == 0 || queries <= 0) {
    std::fprintf(
        stderr,
        "usage: db_bench --dsn DSN [--size N] [--queries Q] [--mode async|blocking|both]\n");
    return 2;
  }
  for (const char* m : {"async", "blocking"}) {
    if (mode != "both" && mode != m) continue;
    double s = std::strcmp(m, "async") == 0 ? run_async(dsn, size, queries)
                                            : run_blocking(dsn, size, queries);
    std::printf("%s size=%zu queries=%ld seconds=%.3f qps=%.0f\n", m, size, queries, s,
                queries / s);
    std::fflush(stdout);
  }
  return 0;
}
