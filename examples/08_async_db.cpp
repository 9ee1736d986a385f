// The tour's asynchronous database client, for PostgreSQL: the handlers query through a
// pg::Pool whose connections live on the IOLoop (libpq's non-blocking API), so hundreds
// of requests can wait on the database at once without a thread each.
//
//   08_async_db --dsn 'host=127.0.0.1 port=5432 dbname=app user=app' [--pool N] [--port N]
//   curl http://127.0.0.1:8888/                      # every entry, as JSON
//   curl http://127.0.0.1:8888/entry/1               # one entry, 404 if missing
//   curl -d 'title=Hi&body=there' http://127.0.0.1:8888/entry
//   curl 'http://127.0.0.1:8888/slow?seconds=1'      # pg_sleep; other requests go on
#include <csignal>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "example_args.h"
#include "tronada/async/run_sync.h"
#include "tronada/db/pg_pool.h"
#include "tronada/web/application.h"
#include "tronada/web/request_handler.h"

using namespace tronada;

namespace {

nlohmann::json to_json(const pg::Row& row) {
  return {{"id", row.get<std::int64_t>("id")},
          {"title", row.get<std::string>("title")},
          {"body", row.get<std::string>("body")}};
}

class EntriesHandler : public RequestHandler {
 public:
  void initialize(pg::Pool* pool) { pool_ = pool; }
  Task<void> get() override {
    Task<pg::Result> reading = pool_->query("SELECT id, title, body FROM entries ORDER BY id");
    pg::Result rows = co_await std::move(reading);
    nlohmann::json entries = nlohmann::json::array();
    for (pg::Row row : rows) entries.push_back(to_json(row));
    write_json({{"entries", entries}});
  }

 private:
  pg::Pool* pool_ = nullptr;
};

class EntryHandler : public RequestHandler {
 public:
  void initialize(pg::Pool* pool) { pool_ = pool; }
  std::vector<std::string> allowed_methods() const override { return {"GET", "POST"}; }

  Task<void> get() override {
    if (path_args().empty()) throw HTTPError(405);  // /entry takes POST only
    std::int64_t id = std::stoll(path_args().at(0));
    Task<pg::Result> reading =
        pool_->query("SELECT id, title, body FROM entries WHERE id = $1", id);
    pg::Result rows = co_await std::move(reading);
    if (rows.empty()) throw HTTPError(404);
    write_json(to_json(rows[0]));
  }

  Task<void> post() override {
    std::string title = get_argument("title");
    std::string body = get_argument("body", "");
    // $1 and $2 travel apart from the SQL text: no value is ever spliced into it.
    Task<pg::Result> writing =
        pool_->query("INSERT INTO entries (title, body) VALUES ($1, $2) RETURNING id", title, body);
    pg::Result r = co_await std::move(writing);
    set_status(201);
    write_json({{"id", r.scalar<std::int64_t>()}});
  }

 private:
  pg::Pool* pool_ = nullptr;
};

class SlowHandler : public RequestHandler {
 public:
  void initialize(pg::Pool* pool) { pool_ = pool; }
  Task<void> get() override {
    double seconds = std::stod(get_argument("seconds", "1"));
    if (seconds < 0 || seconds > 10) throw HTTPError(400, "seconds must be within 0-10");
    Task<pg::Result> sleeping = pool_->query("SELECT pg_sleep($1)", seconds);
    co_await std::move(sleeping);
    write("slept\n");
  }

 private:
  pg::Pool* pool_ = nullptr;
};

Task<void> create_schema(pg::Pool& pool) {
  Task<pg::Result> made = pool.query(
      "CREATE TABLE IF NOT EXISTS entries (id bigserial PRIMARY KEY, title text NOT NULL, body "
      "text NOT NULL)");
  co_await std::move(made);
  Task<pg::Result> count = pool.query("SELECT count(*) FROM entries");
  pg::Result n = co_await std::move(count);
  if (n.scalar<std::int64_t>() == 0) {
    Task<pg::Result> seed = pool.query("INSERT INTO entries (title, body) VALUES ($1, $2)", "Hello",
                                       "The first entry.");
    co_await std::move(seed);
  }
}

}  // namespace

int main(int argc, char** argv) {
  // --dsn and --pool are this example's own flags; the rest are every example's.
  std::string dsn = "host=/var/run/postgresql dbname=postgres";
  std::size_t pool_size = 10;
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--dsn") == 0 && i + 1 < argc) {
      dsn = argv[++i];
    } else if (std::strcmp(argv[i], "--pool") == 0 && i + 1 < argc) {
      pool_size = static_cast<std::size_t>(std::max(1, std::atoi(argv[++i])));
    } else {
      rest.push_back(argv[i]);
    }
  }
  auto args = examples::parse_args(static_cast<int>(rest.size()), rest.data());

  pg::Pool pool({.conninfo = dsn, .max_size = pool_size});
  try {
    run_sync([&pool] { return create_schema(pool); }, std::chrono::seconds(30));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "08_async_db: cannot set up the database (%s): %s\n", dsn.c_str(),
                 e.what());
    return 1;
  }
  Application app({Rule("/", handler<EntriesHandler>(&pool)),
                   Rule("/entry/([0-9]+)", handler<EntryHandler>(&pool)),
                   Rule("/entry", handler<EntryHandler>(&pool)),
                   Rule("/slow", handler<SlowHandler>(&pool))});
  HTTPServer& server = app.listen(args.port, args.address);
  std::printf("listening on http://%s:%d/ (PostgreSQL pool of %zu)\n", args.address.c_str(),
              server.ports().at(0), pool_size);
  std::fflush(stdout);
  IOLoop& loop = IOLoop::current();
  loop.add_signal_handler(SIGINT, [&] { loop.stop(); });
  loop.add_signal_handler(SIGTERM, [&] { loop.stop(); });
  loop.start();
  pool.close();
  return 0;
}
