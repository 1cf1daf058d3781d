// The parts of the postgres sink that need no server. The sink against a real PostgreSQL is
// tested in tests/integration/test_postgres.py.
#include "sink/postgres_sink.h"

#include <doctest/doctest.h>

#include <string>

#include "base/civil_time.h"
#include "window/batch.h"

using namespace turnstiled;
using namespace turnstiled::sink;

namespace {

const int64_t kJan6 = base::DaysFromCivil(2024, 1, 6) * 86400 * 1000;
const int64_t kHour = 3600 * 1000;

window::WindowRow Row(std::string station, int64_t entries, std::string source = "t-0") {
  window::WindowRow r;
  r.station = std::move(station);
  r.window_start_ms = kJan6 + 4 * kHour;
  r.window_end_ms = kJan6 + 8 * kHour;
  r.entries = entries;
  r.exits = entries / 2;
  r.events = 3;
  r.first_event_ms = kJan6 + 4 * kHour + 123;
  r.last_event_ms = kJan6 + 8 * kHour - 1000;
  r.source = std::move(source);
  return r;
}

std::string Encode(pg::CopyBatch& batch, size_t* rows = nullptr) {
  std::string out;
  const size_t n = batch.Encode(&out);
  if (rows != nullptr) *rows = n;
  return out;
}

std::string ParseError(std::string_view table) {
  auto t = pg::ParseTableName(table);
  return t.ok() ? "ok" : t.status().message();
}

}  // namespace

TEST_CASE("a table name is a name or schema.name, folded like unquoted SQL unless quoted") {
  auto t = pg::ParseTableName("station_window");
  REQUIRE(t.ok());
  CHECK(t->schema == "");
  CHECK(t->name == "station_window");
  t = pg::ParseTableName("Public.Station_Window");
  REQUIRE(t.ok());
  CHECK(t->schema == "public");
  CHECK(t->name == "station_window");
  t = pg::ParseTableName(R"("My ""T"".x".Order)");
  REQUIRE(t.ok());
  CHECK(t->schema == R"(My "T".x)");
  CHECK(t->name == "order");

  CHECK(ParseError("") == "table '': an empty name");
  CHECK(ParseError("a.") == "table 'a.': an empty name");
  CHECK(ParseError(".a") == "table '.a': an empty name");
  CHECK(ParseError("a.b.c") == "table 'a.b.c': expected 'table' or 'schema.table'");
  CHECK(ParseError("a b") ==
        "table 'a b': ' ' is not allowed in an unquoted name; write the name in double quotes");
  CHECK(ParseError("\"open") == "table '\"open': a quoted name is not closed");
  CHECK(ParseError("\"a\"b") == "table '\"a\"b': expected '.' after a quoted name");
}

TEST_CASE("an identifier is quoted with its quotes doubled") {
  CHECK(pg::QuoteIdent("station_window") == "\"station_window\"");
  CHECK(pg::QuoteIdent("a\"b; DROP TABLE x") == "\"a\"\"b; DROP TABLE x\"");
}

TEST_CASE("connection, shutdown, conflict and resource errors are retryable; the rest is not") {
  for (const char* s : {"08000", "08003", "08006", "08001", "57P01", "57P02", "57P03", "57P05",
                        "57014", "40001", "40P01", "53100", "53200", "53300", "55P03", "58030"}) {
    CAPTURE(s);
    CHECK(pg::IsRetryableSqlState(s));
  }
  for (const char* s : {"28P01", "28000", "57P04", "42501", "42P01", "42703", "3F000", "23505",
                        "22021", "XX000", "", "0800"}) {
    CAPTURE(s);
    CHECK_FALSE(pg::IsRetryableSqlState(s));
  }
}

TEST_CASE("a failed connection is permanent for authentication and unknown roles or databases") {
  const std::string at = "connection to server at \"127.0.0.1\", port 5432 failed: ";
  CHECK(pg::IsPermanentConnectError(
      at + "FATAL: password authentication failed for user \"turnstiled\""));
  CHECK(pg::IsPermanentConnectError(
      at + "FATAL: no pg_hba.conf entry for host \"10.0.0.1\", user \"a\", database \"b\""));
  CHECK(pg::IsPermanentConnectError(at + "FATAL: role \"nobody\" does not exist"));
  CHECK(pg::IsPermanentConnectError(at + "FATAL: database \"nowhere\" does not exist"));
  CHECK(pg::IsPermanentConnectError(at + "fe_sendauth: no password supplied"));
  CHECK_FALSE(pg::IsPermanentConnectError(
      at +
      "Connection refused Is the server running on that host and accepting TCP/IP "
      "connections?"));
  CHECK_FALSE(pg::IsPermanentConnectError(at + "FATAL: the database system is starting up"));
  CHECK_FALSE(pg::IsPermanentConnectError(at + "FATAL: sorry, too many clients already"));
  CHECK_FALSE(pg::IsPermanentConnectError("timeout expired"));
}

TEST_CASE("a row is COPY text: ISO UTC times, t/f, and \\N for a missing time") {
  pg::CopyBatch batch;
  window::WindowRow r = Row("59 ST", 120);
  r.final = false;
  batch.Add(r);
  r = Row("A", 1);
  r.first_event_ms = window::kNoTime;
  batch.Add(r);
  size_t rows = 0;
  CHECK(Encode(batch, &rows) ==
        "59 ST\t2024-01-06T04:00:00Z\t2024-01-06T08:00:00Z\t120\t60\t3\tf\t"
        "2024-01-06T04:00:00.123Z\t2024-01-06T07:59:59Z\n"
        "A\t2024-01-06T04:00:00Z\t2024-01-06T08:00:00Z\t1\t0\t3\tt\t\\N\t"
        "2024-01-06T07:59:59Z\n");
  CHECK(rows == 2);
}

TEST_CASE("station names are escaped for COPY and always valid UTF-8") {
  pg::CopyBatch batch;
  batch.Add(Row("B\\S\tT\nN\rR", 1));
  batch.Add(Row("\xC3\x89TOILE \xE4\xB8\xAD", 2));  // valid UTF-8 is kept
  batch.Add(Row("CAF\xE9 \xC3", 3));                // stray bytes: their Latin-1 letters
  batch.Add(Row(std::string("N\0L", 3), 4));        // text cannot hold NUL: U+FFFD
  batch.Add(Row("\\.", 5));                         // never the end-of-data marker
  std::string names;
  const std::string text = Encode(batch);
  for (size_t pos = 0; pos < text.size();) {
    const size_t tab = text.find('\t', pos);
    names += text.substr(pos, tab - pos) + "|";
    pos = text.find('\n', tab) + 1;
  }
  CHECK(names ==
        "B\\\\S\\tT\\nN\\rR|"
        "CAF\xC3\xA9 \xC3\x83|"
        "N\xEF\xBF\xBDL|"
        "\\\\.|"
        "\xC3\x89TOILE \xE4\xB8\xAD|");
}

TEST_CASE("a key keeps its last row per input partition, and partitions add up") {
  pg::CopyBatch batch;
  batch.Add(Row("B", 10, "t-0"));
  window::WindowRow update = Row("A", 5, "t-0");
  update.final = false;
  batch.Add(update);
  batch.Add(Row("A", 7, "t-0"));  // emit: update, then the final row: 7 replaces 5
  window::WindowRow other = Row("A", 100, "t-3");
  other.first_event_ms -= 100;
  other.last_event_ms += 500;
  batch.Add(other);  // the same window from another partition: a partial sum
  window::WindowRow later = Row("A", 1000, "t-0");
  later.window_start_ms += 4 * kHour;
  later.window_end_ms += 4 * kHour;
  batch.Add(later);
  size_t rows = 0;
  CHECK(Encode(batch, &rows) ==
        "A\t2024-01-06T04:00:00Z\t2024-01-06T08:00:00Z\t107\t53\t6\tt\t"
        "2024-01-06T04:00:00.023Z\t2024-01-06T07:59:59.500Z\n"
        "A\t2024-01-06T08:00:00Z\t2024-01-06T12:00:00Z\t1000\t500\t3\tt\t"
        "2024-01-06T04:00:00.123Z\t2024-01-06T07:59:59Z\n"
        "B\t2024-01-06T04:00:00Z\t2024-01-06T08:00:00Z\t10\t5\t3\tt\t"
        "2024-01-06T04:00:00.123Z\t2024-01-06T07:59:59Z\n");
  CHECK(rows == 3);
  CHECK(batch.size() == 5);
  batch.Clear();
  CHECK(batch.empty());
  CHECK(Encode(batch).empty());
}

TEST_CASE("a DSN libpq cannot parse is a config error that quotes none of it") {
  config::SinkConfig c;
  c.name = "warehouse";
  c.type = config::SinkType::kPostgres;
  c.dsn = "host=db password=hunter2 oops";
  auto s = MakePostgresSink(c);
  REQUIRE_FALSE(s.ok());
  CHECK(s.status().code() == base::Code::kInvalidArgument);
  CHECK(s.status().message() ==
        "invalid dsn: missing \"=\" after \"...\" in connection info string");
  CHECK(s.status().message().find("oops") == std::string::npos);
  CHECK(s.status().message().find("hunter2") == std::string::npos);
  c.dsn = "host=db password='hunter2";
  CHECK(MakePostgresSink(c).status().message() ==
        "invalid dsn: unterminated quoted string in connection info string");
  c.dsn = "postgresql://app:hunter2@db:5432/x?sslmode=hunter2&bogus=x";
  CHECK(MakePostgresSink(c).status().message().find("hunter2") == std::string::npos);
  c.dsn = "host=db bogus=1";
  CHECK(MakePostgresSink(c).status().message() ==
        "invalid dsn: invalid connection option \"bogus\"");
  c.dsn = "";
  CHECK(MakePostgresSink(c).status().message() == "a postgres sink needs a dsn");
  c.dsn = "host=db password=hunter2";
  c.table = "a.b.c";
  CHECK(MakePostgresSink(c).status().message() ==
        "table 'a.b.c': expected 'table' or 'schema.table'");
  c.table = "public.station_window";
  CHECK(MakePostgresSink(c).ok());
  c.dsn = "postgresql://app:hunter2@db:5432/x";
  CHECK(MakePostgresSink(c).ok());
  c.dsn = "warehouse";  // a bare database name
  CHECK(MakePostgresSink(c).ok());
}

TEST_CASE("a server that refuses connections is retryable, named without the DSN") {
  config::SinkConfig c;
  c.name = "warehouse";
  c.type = config::SinkType::kPostgres;
  c.dsn = "host=127.0.0.1 port=1 dbname=db user=app password=hunter2";
  auto sink = MakePostgresSink(c);
  REQUIRE(sink.ok());
  const base::Status s = (*sink)->Open();
  CHECK(s.code() == base::Code::kUnavailable);
  CHECK(s.message().find("127.0.0.1:1/db: cannot connect: ") == 0);
  CHECK(s.message().find("hunter2") == std::string::npos);
  CHECK(s.message().find("user=") == std::string::npos);
  // Nothing buffered: nothing to flush, so no connection is needed.
  CHECK((*sink)->Flush().ok());
  window::WindowRow r = Row("A", 1);
  CHECK((*sink)->Write({&r, 1}).ok());
  CHECK((*sink)->Flush().code() == base::Code::kUnavailable);
  CHECK((*sink)->BytesWritten() == 0);
  const base::Status closed = (*sink)->Close();
  CHECK(closed.code() == base::Code::kUnavailable);
  CHECK(closed.message().find("closed with 1 rows not written") != std::string::npos);
}
