// The tour's blocking database, made safe for the loop: the handlers read and write a
// SQLite file through db::BlockingPool, which runs each call on the executor, so a slow
// disk or a held lock never stalls the other requests.
//
//   07_db [--db FILE] [--port N] [--address A]
//   curl http://127.0.0.1:8888/                      # every entry, as JSON
//   curl http://127.0.0.1:8888/entry/1               # one entry, 404 if missing
//   curl -d 'title=Hi&body=there' http://127.0.0.1:8888/entry
#include <csignal>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "example_args.h"
#include "tronada/db/blocking_pool.h"
#include "tronada/db/sqlite_database.h"
#include "tronada/web/application.h"
#include "tronada/web/request_handler.h"

using namespace tronada;
using db::BlockingPool;
using db::SqliteDatabase;
using db::SqliteRow;

namespace {

using Pool = BlockingPool<SqliteDatabase>;

nlohmann::json to_json(const SqliteRow& row) {
  return {{"id", row.get<std::int64_t>("id")},
          {"title", row.get<std::string>("title")},
          {"body", row.get<std::string>("body")}};
}

class EntriesHandler : public RequestHandler {
 public:
  void initialize(Pool* pool) { pool_ = pool; }
  Task<void> get() override {
    // Runs on an executor thread: it sees only the connection it is lent.
    Task<std::vector<SqliteRow>> reading = pool_->run([](SqliteDatabase& db) {
      return db.query("SELECT id, title, body FROM entries ORDER BY id");
    });
    std::vector<SqliteRow> rows = co_await std::move(reading);
    nlohmann::json entries = nlohmann::json::array();
    for (const auto& row : rows) entries.push_back(to_json(row));
    write_json({{"entries", entries}});
  }

 private:
  Pool* pool_ = nullptr;
};

class EntryHandler : public RequestHandler {
 public:
  void initialize(Pool* pool) { pool_ = pool; }
  std::vector<std::string> allowed_methods() const override { return {"GET", "POST"}; }

  Task<void> get() override {
    if (path_args().empty()) throw HTTPError(405);  // /entry takes POST only
    std::int64_t id = std::stoll(path_args().at(0));
    Task<std::vector<SqliteRow>> reading = pool_->run([id](SqliteDatabase& db) {
      return db.query("SELECT id, title, body FROM entries WHERE id = ?", {id});
    });
    std::vector<SqliteRow> rows = co_await std::move(reading);
    if (rows.empty()) throw HTTPError(404);
    write_json(to_json(rows[0]));
  }

  Task<void> post() override {
    std::string title = get_argument("title");
    std::string body = get_argument("body", "");
    // Values bind to ? placeholders: a title like "x'); DROP TABLE entries; --" is data.
    Task<std::int64_t> writing = pool_->run([title, body](SqliteDatabase& db) {
      db.execute("INSERT INTO entries (title, body) VALUES (?, ?)", {title, body});
      return db.last_insert_rowid();
    });
    std::int64_t id = co_await std::move(writing);
    set_status(201);
    write_json({{"id", id}});
  }

 private:
  Pool* pool_ = nullptr;
};

}  // namespace

int main(int argc, char** argv) {
  // --db is this example's own flag; the rest are every example's.
  std::string path = "07_db.sqlite";
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--db") == 0 && i + 1 < argc) {
      path = argv[++i];
    } else {
      rest.push_back(argv[i]);
    }
  }
  auto args = examples::parse_args(static_cast<int>(rest.size()), rest.data());

  {
    // Before the loop runs, blocking here is fine: create and seed the table.
    SqliteDatabase setup(path);
    setup.execute_script(
        "PRAGMA journal_mode=WAL;"
        "CREATE TABLE IF NOT EXISTS entries (id INTEGER PRIMARY KEY, title TEXT NOT NULL, body "
        "TEXT NOT NULL)");
    if (setup.query("SELECT 1 FROM entries LIMIT 1").empty()) {
      setup.execute("INSERT INTO entries (title, body) VALUES (?, ?)",
                    {"Hello", "The first entry."});
    }
  }

  Pool pool([path] { return std::make_unique<SqliteDatabase>(path); }, 4);
  Application app({Rule("/", handler<EntriesHandler>(&pool)),
                   Rule("/entry/([0-9]+)", handler<EntryHandler>(&pool)),
                   Rule("/entry", handler<EntryHandler>(&pool))});
  HTTPServer& server = app.listen(args.port, args.address);
  std::printf("listening on http://%s:%d/ (SQLite file %s)\n", args.address.c_str(),
              server.ports().at(0), path.c_str());
  std::fflush(stdout);
  IOLoop& loop = IOLoop::current();
  loop.add_signal_handler(SIGINT, [&] { loop.stop(); });
  loop.add_signal_handler(SIGTERM, [&] { loop.stop(); });
  loop.start();
  return 0;
}
