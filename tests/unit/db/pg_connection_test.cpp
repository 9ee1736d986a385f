// pg::Connection against a real PostgreSQL server that the test starts: every parameter
// type, NULLs, server errors as exceptions, timeouts and cancellation, lost connections.
#include "tronada/db/pg_connection.h"

#include <gtest/gtest.h>

#include <cmath>

#include "db/db_fixture.h"
#include "db/fake_pg_peer.h"

using namespace tronada;
using namespace tronada::test_support;
using namespace std::chrono_literals;

namespace {

using ConnPtr = std::shared_ptr<pg::Connection>;

Task<ConnPtr> connect(std::string conninfo) {
  Future<ConnPtr> f = pg::Connection::connect(std::move(conninfo), 10s);
  co_return co_await f;
}

/// Awaits `f` and gives the message it failed with ("" if it did not fail).
template <typename T>
Task<std::string> failure(Future<T> f) {
  try {
    co_await f;
  } catch (const std::exception& e) {
    co_return std::string(e.what());
  }
  co_return std::string();
}

class PgConnectionTest : public PgTest {};
class PgFakePeerTest : public LoopTest {};

}  // namespace

TEST_F(PgConnectionTest, EveryParameterTypeRoundTrips) {
  run([&]() -> Task<void> {
    ConnPtr conn = co_await connect(server->conninfo());
    EXPECT_GE(conn->server_version(), 100000);
    Future<pg::Result> f = conn->query(
        "SELECT $1 AS b, $2 AS i2, $3 AS i4, $4 AS i8, $5 AS big, $6 AS f4, $7 AS f8, $8 AS t, "
        "$9 AS bytes, $10 AS ts, $11 AS ints, $12 AS texts, $13 AS maybe, $14 AS nan, $15 AS sv",
        true, std::int16_t(-12), 123456, std::int64_t(-9'000'000'000),
        std::uint64_t(18'446'744'073'709'551'615ull), 1.5f, 0.1,
        std::string("O'Reilly \"quoted\" \\ ünïcödé"), pg::Bytea{std::string("\0\x01\xff\x7f", 4)},
        pg::Timestamp(std::chrono::microseconds(1'700'000'000'123'456)),
        std::vector<std::int64_t>{1, -2, 3},
        std::vector<std::string>{"a,b", "{x}", "NULL", "q\"\\"},
        std::vector<std::optional<int>>{4, std::nullopt}, std::nan(""), std::string_view("view"));
    pg::Result r = co_await f;
    EXPECT_EQ(r.size(), 1u);
    if (r.size() != 1) co_return;
    pg::Row row = r[0];
    EXPECT_EQ(row.get<bool>("b"), true);
    EXPECT_EQ(row["i2"].type(), pg::oid::int2);
    EXPECT_EQ(row.get<std::int16_t>("i2"), -12);
    EXPECT_EQ(row.get<int>("i4"), 123456);
    EXPECT_EQ(row.get<std::int64_t>("i8"), -9'000'000'000);
    EXPECT_EQ(row["big"].type(), pg::oid::numeric);
    EXPECT_EQ(row.get<std::uint64_t>("big"), 18'446'744'073'709'551'615ull);
    EXPECT_EQ(row.get<float>("f4"), 1.5f);
    EXPECT_EQ(row.get<double>("f8"), 0.1);
    EXPECT_EQ(row.get<std::string>("t"), "O'Reilly \"quoted\" \\ ünïcödé");
    EXPECT_EQ(row.get<pg::Bytea>("bytes").data, std::string("\0\x01\xff\x7f", 4));
    EXPECT_EQ(row["ts"].type(), pg::oid::timestamptz);
    EXPECT_EQ(row.get<pg::Timestamp>("ts").time_since_epoch(),
              std::chrono::microseconds(1'700'000'000'123'456));
    EXPECT_EQ(row.get<std::vector<std::int64_t>>("ints"), (std::vector<std::int64_t>{1, -2, 3}));
    EXPECT_EQ(row.get<std::vector<std::string>>("texts"),
              (std::vector<std::string>{"a,b", "{x}", "NULL", "q\"\\"}));
    EXPECT_EQ(row.get<std::vector<std::optional<int>>>("maybe"),
              (std::vector<std::optional<int>>{4, std::nullopt}));
    EXPECT_TRUE(std::isnan(row.get<double>("nan")));
    EXPECT_EQ(row.get<std::string_view>("sv"), "view");

    // Untyped strings take the column's type: a date, a json document, a uuid.
    Future<pg::Result> typed =
        conn->query("SELECT $1::date + 1 AS d, ($2::jsonb)->>'k' AS j, $3::uuid AS u", "2024-02-28",
                    R"({"k": "v"})", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    pg::Result t = co_await typed;
    EXPECT_EQ(t[0].get<std::string>("d"), "2024-02-29");
    EXPECT_EQ(t[0].get<std::string>("j"), "v");
    EXPECT_EQ(t[0].get<std::string>("u"), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    conn->close();
  });
}

TEST_F(PgConnectionTest, NullsReadAsOptionalAndRefuseOtherTypes) {
  run([&]() -> Task<void> {
    ConnPtr conn = co_await connect(server->conninfo());
    Future<pg::Result> f =
        conn->query("SELECT $1::int AS a, $2::text AS b, NULL::int[] AS c, $3::int AS d", nullptr,
                    std::optional<std::string>(), std::optional<int>(5));
    pg::Result r = co_await f;
    EXPECT_TRUE(r[0]["a"].is_null());
    EXPECT_EQ(r[0].get<std::optional<int>>("a"), std::nullopt);
    EXPECT_EQ(r[0].get<std::optional<std::string>>("b"), std::nullopt);
    EXPECT_EQ(r[0].get<std::optional<std::vector<int>>>("c"), std::nullopt);
    EXPECT_EQ(r[0].get<std::optional<int>>("d"), 5);
    EXPECT_THROW(r[0].get<int>("a"), pg::ConversionError);
    EXPECT_THROW(r[0].get<int>("nope"), std::out_of_range);
    EXPECT_THROW(r[1], std::out_of_range);
    conn->close();
  });
}

TEST_F(PgConnectionTest, ParametersAreNeverSplicedIntoTheStatement) {
  run([&]() -> Task<void> {
    ConnPtr conn = co_await connect(server->socket_conninfo());  // over the Unix socket
    Future<pg::Result> made = conn->execute_script(
        "CREATE TABLE people (id serial PRIMARY KEY, name text NOT NULL UNIQUE);"
        "CREATE TABLE pets (owner int REFERENCES people(id), name text)");
    co_await made;
    std::string hostile = "x'); DROP TABLE people; --";
    Future<pg::Result> ins =
        conn->query("INSERT INTO people (name) VALUES ($1) RETURNING id", hostile);
    pg::Result r = co_await ins;
    EXPECT_EQ(r.affected_rows(), 1u);
    EXPECT_EQ(r.command_tag(), "INSERT 0 1");
    Future<pg::Result> back = conn->query("SELECT name FROM people WHERE id = $1", r.scalar<int>());
    pg::Result b = co_await back;
    EXPECT_EQ(b.scalar<std::string>(), hostile);
    // A NUL cannot be a text value: refused rather than silently cut short.
    Future<pg::Result> nul = conn->query("SELECT $1", std::string("a\0b", 3));
    EXPECT_NE(error_of(nul).find("NUL"), std::string::npos);
    conn->close();
  });
}

TEST_F(PgConnectionTest, ServerErrorsCarryTheMessageAndSqlstate) {
  run([&]() -> Task<void> {
    ConnPtr conn = co_await connect(server->conninfo());
    Future<pg::Result> made = conn->execute_script(
        "CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL CHECK (email LIKE '%@%'))");
    co_await made;

    Future<pg::Result> syntax = conn->query("SELEC 1");
    try {
      co_await syntax;
      ADD_FAILURE() << "a syntax error must throw";
    } catch (const pg::ServerError& e) {
      EXPECT_EQ(e.sqlstate, pg::sqlstate::syntax_error);
      EXPECT_EQ(e.severity, "ERROR");
      EXPECT_NE(std::string(e.what()).find("syntax error at or near \"SELEC\""), std::string::npos)
          << e.what();
      EXPECT_NE(std::string(e.what()).find("SQLSTATE 42601"), std::string::npos);
    }

    Future<pg::Result> first = conn->query("INSERT INTO users VALUES ($1, $2)", 1, "a@example.com");
    co_await first;
    Future<pg::Result> dup = conn->query("INSERT INTO users VALUES ($1, $2)", 1, "b@example.com");
    try {
      co_await dup;
      ADD_FAILURE() << "a duplicate key must throw";
    } catch (const pg::ServerError& e) {
      EXPECT_EQ(e.sqlstate, pg::sqlstate::unique_violation);
      EXPECT_EQ(e.constraint, "users_pkey");
      EXPECT_EQ(e.table, "users");
      EXPECT_NE(e.message.find("duplicate key value violates unique constraint \"users_pkey\""),
                std::string::npos);
      EXPECT_NE(e.detail.find("Key (id)=(1) already exists."), std::string::npos) << e.detail;
    }
    Future<pg::Result> null = conn->query("INSERT INTO users VALUES ($1, $2)", 2, nullptr);
    try {
      co_await null;
      ADD_FAILURE();
    } catch (const pg::ServerError& e) {
      EXPECT_EQ(e.sqlstate, pg::sqlstate::not_null_violation);
      EXPECT_EQ(e.column, "email");
    }
    Future<pg::Result> check = conn->query("INSERT INTO users VALUES ($1, $2)", 3, "nope");
    std::string check_error = co_await failure(check);
    EXPECT_NE(check_error.find("users_email_check"), std::string::npos) << check_error;
    // Missing table, wrong parameter count, bad parameter text: errors, never a crash.
    Future<pg::Result> missing = conn->query("SELECT * FROM nowhere");
    Future<pg::Result> count = conn->query("SELECT $1::int, $2::int", 1);
    Future<pg::Result> bad = conn->query("SELECT $1::int", "one");
    Future<pg::Result> fine = conn->query("SELECT count(*) FROM users");
    pg::Result n = co_await fine;  // queued statements all ran, in order
    EXPECT_EQ(n.scalar<int>(), 1);
    EXPECT_NE(error_of(missing).find("42P01"), std::string::npos);
    EXPECT_NE(error_of(count).find("08P01"), std::string::npos) << error_of(count);
    EXPECT_NE(error_of(bad).find("invalid input syntax for type integer"), std::string::npos);
    EXPECT_TRUE(conn->is_open());
    conn->close();
  });
}

TEST_F(PgConnectionTest, StatementTimeoutCancelsOnTheServerAndKeepsTheConnection) {
  run([&]() -> Task<void> {
    ConnPtr conn = co_await connect(server->conninfo());
    Future<pg::Result> slow = conn->execute("SELECT pg_sleep(30)", {}, 200ms);
    Future<pg::Result> queued = conn->execute("SELECT 2", {}, 100ms);  // times out waiting
    Future<pg::Result> after = conn->query("SELECT 3");
    try {
      co_await slow;
      ADD_FAILURE() << "must time out";
    } catch (const TimeoutError&) {
    }
    EXPECT_THROW(co_await queued, TimeoutError);
    pg::Result r = co_await after;  // runs once the server has cancelled pg_sleep
    EXPECT_EQ(r.scalar<int>(), 3);

    // cancel(): the statement fails with the server's 57014.
    Future<pg::Result> sleeping = conn->query("SELECT pg_sleep(30)");
    Future<void> pause = sleep(100ms);
    co_await pause;
    conn->cancel();
    try {
      co_await sleeping;
      ADD_FAILURE();
    } catch (const pg::ServerError& e) {
      EXPECT_EQ(e.sqlstate, pg::sqlstate::query_canceled);
    }
    conn->close();
  });
}

TEST_F(PgConnectionTest, ConnectFailuresAndLostConnectionsAreConnectionErrors) {
  run([&]() -> Task<void> {
    Future<ConnPtr> refused =
        pg::Connection::connect("host=127.0.0.1 port=1 connect_timeout=5", 5s);
    EXPECT_THROW(co_await refused, pg::ConnectionError);
    Future<ConnPtr> baddb = pg::Connection::connect(server->conninfo() + " dbname=nosuchdb", 5s);
    std::string baddb_error = co_await failure(baddb);
    EXPECT_NE(baddb_error.find("nosuchdb"), std::string::npos) << baddb_error;

    ConnPtr conn = co_await connect(server->conninfo());
    bool closed = false;
    conn->set_close_handler([&closed] { closed = true; });
    Future<pg::Result> slow = conn->query("SELECT pg_sleep(30)");
    Future<pg::Result> queued = conn->query("SELECT 1");
    Future<void> pause = sleep(100ms);
    co_await pause;
    server->kill();
    EXPECT_THROW(co_await slow, pg::ConnectionError);
    EXPECT_THROW(co_await queued, pg::ConnectionError);
    EXPECT_TRUE(closed);
    EXPECT_FALSE(conn->is_open());
    Future<pg::Result> later = conn->query("SELECT 1");
    EXPECT_THROW(co_await later, pg::ConnectionError);
  });
}

TEST_F(PgConnectionTest, ConnectMovesOnWhenTheFirstHostRefuses) {
  run([&]() -> Task<void> {
    // The refusal is a socket error: libuv stops watching the socket when it reports
    // one, and libpq's socket for the next host usually reuses the number. The connect
    // must go on to the second host rather than wait out its timeout.
    ConnPtr conn =
        co_await connect("host=127.0.0.1,127.0.0.1 port=1," + std::to_string(server->port()) +
                         " user=postgres dbname=postgres");
    Future<pg::Result> f = conn->query("SELECT 1");
    pg::Result r = co_await f;
    EXPECT_EQ(r.scalar<int>(), 1);
    conn->close();
  });
}

// A backend whose postmaster died says FATAL and exits with the client's statement
// unread, so the client's socket holds that message and a reset at once. libuv then
// reports a socket error and stops watching; reading the message alone does not show
// libpq the error, and the statement used to wait forever (about 1 run in 7 of
// PgPoolTest.PoolRecoversWhenTheServerIsKilledAndRestartedMidRun). The peer makes that
// timing certain.
TEST_F(PgFakePeerTest, AStatementFailsWhenTheBackendSaysFatalAndResetsInOneReadiness) {
  FakePgPeer peer;
  run([&]() -> Task<void> {
    ConnPtr conn = co_await connect(peer.conninfo());
    bool closed = false;
    conn->set_close_handler([&closed] { closed = true; });
    Future<pg::Result> q = conn->query("SELECT $1::int", 1);
    EXPECT_EQ(peer.read_statement(), "SELECT $1::int");
    peer.say_fatal_and_hang_up("terminating connection due to unexpected postmaster exit",
                               Hangup::reset);
    EXPECT_THROW(co_await q, pg::ConnectionError);
    EXPECT_TRUE(closed);
    EXPECT_FALSE(conn->is_open());
  });
}
