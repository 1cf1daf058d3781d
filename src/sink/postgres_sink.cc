#include "sink/postgres_sink.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <numeric>

#include "base/civil_time.h"
#include "base/log.h"
#include "sink/libpq.h"
#include "sink/row_format.h"
#include "window/batch.h"

namespace turnstiled::sink {
namespace pg {
namespace {

bool IsBareIdentByte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '$' || c >= 0x80;
}

// The length of the valid UTF-8 sequence that starts at s[i] (a byte >= 0x80), or 0.
size_t Utf8SequenceAt(std::string_view s, size_t i) {
  for (size_t n = 2; n <= 4 && i + n <= s.size(); ++n) {
    if (IsValidUtf8(s.substr(i, n))) return n;
  }
  return 0;
}

void AppendCopyText(std::string_view s, std::string* out) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t n = Utf8SequenceAt(s, i);
      if (n == 0) {  // not UTF-8: the byte's Latin-1 character
        out->push_back(static_cast<char>(0xC0 | (c >> 6)));
        out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
        ++i;
      } else {
        out->append(s.substr(i, n));
        i += n;
      }
      continue;
    }
    switch (c) {
      case '\\':
        out->append("\\\\");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\0':
        out->append("\xEF\xBF\xBD");  // text cannot hold NUL
        break;
      default:
        out->push_back(static_cast<char>(c));
    }
    ++i;
  }
}

void AppendInt(int64_t v, std::string* out) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, r.ptr);
}

void AppendTime(int64_t ms, std::string* out) {
  if (ms == window::kNoTime) {
    out->append("\\N");
  } else {
    base::AppendIsoUtc(ms, out);
  }
}

}  // namespace

base::Result<TableName> ParseTableName(std::string_view table) {
  const std::string where = "table '" + std::string(table) + "': ";
  std::vector<std::string> parts;
  size_t i = 0;
  for (;;) {
    std::string part;
    if (i < table.size() && table[i] == '"') {
      bool closed = false;
      for (++i; i < table.size(); ++i) {
        if (table[i] != '"') {
          part.push_back(table[i]);
        } else if (i + 1 < table.size() && table[i + 1] == '"') {
          part.push_back('"');
          ++i;
        } else {
          closed = true;
          ++i;
          break;
        }
      }
      if (!closed) return base::Status::InvalidArgument(where + "a quoted name is not closed");
      if (part.find('\0') != std::string::npos) {
        return base::Status::InvalidArgument(where + "a name cannot hold a NUL byte");
      }
    } else {
      for (; i < table.size() && table[i] != '.'; ++i) {
        const auto c = static_cast<unsigned char>(table[i]);
        if (!IsBareIdentByte(c)) {
          return base::Status::InvalidArgument(
              where + "'" + std::string(1, table[i]) +
              "' is not allowed in an unquoted name; write the name in double quotes");
        }
        part.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : table[i]);
      }
    }
    if (part.empty()) return base::Status::InvalidArgument(where + "an empty name");
    parts.push_back(std::move(part));
    if (i == table.size()) break;
    if (table[i] != '.') {
      return base::Status::InvalidArgument(where + "expected '.' after a quoted name");
    }
    ++i;
    if (i == table.size()) return base::Status::InvalidArgument(where + "an empty name");
  }
  if (parts.size() > 2) {
    return base::Status::InvalidArgument(where + "expected 'table' or 'schema.table'");
  }
  if (parts.size() == 1) return TableName{"", std::move(parts[0])};
  return TableName{std::move(parts[0]), std::move(parts[1])};
}

std::string QuoteIdent(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

bool IsRetryableSqlState(std::string_view s) {
  if (s.size() != 5) return false;
  const std::string_view cls = s.substr(0, 2);
  if (cls == "08" || cls == "53" || cls == "58") return true;
  // Administrator or crash shutdown, cannot connect now, idle session timeout; not 57P04
  // (the database was dropped).
  if (s == "57P01" || s == "57P02" || s == "57P03" || s == "57P05") return true;
  return s == "57014" || s == "40001" || s == "40P01" || s == "40003" || s == "55P03" ||
         s == "55006";
}

bool IsPermanentConnectError(std::string_view m) {
  auto has = [&](std::string_view needle) { return m.find(needle) != std::string_view::npos; };
  if (has("authentication failed") || has("no pg_hba.conf entry") ||
      has("pg_hba.conf rejects connection") || has("no password supplied") ||
      has("permission denied for database") || has("invalid connection option") ||
      has("invalid URI")) {
    return true;
  }
  return has("does not exist") && (has("role \"") || has("database \""));
}

void CopyBatch::Add(const window::WindowRow& row) {
  Row r;
  r.station = names_.size();
  r.station_len = static_cast<uint32_t>(row.station.size());
  names_.append(row.station);
  // Rows arrive in runs from one input partition: store each run's source once.
  if (!rows_.empty() && Source(rows_.back()) == row.source) {
    r.source = rows_.back().source;
  } else {
    r.source = names_.size();
    names_.append(row.source);
  }
  r.source_len = static_cast<uint32_t>(row.source.size());
  r.window_start_ms = row.window_start_ms;
  r.window_end_ms = row.window_end_ms;
  r.entries = row.entries;
  r.exits = row.exits;
  r.events = row.events;
  r.first_event_ms = row.first_event_ms;
  r.last_event_ms = row.last_event_ms;
  r.final = row.final;
  rows_.push_back(r);
}

void CopyBatch::Clear() {
  names_.clear();
  rows_.clear();
}

size_t CopyBatch::Encode(std::string* out) {
  order_.resize(rows_.size());
  std::iota(order_.begin(), order_.end(), 0u);
  auto same_key = [&](const Row& a, const Row& b) {
    return a.window_start_ms == b.window_start_ms && a.window_end_ms == b.window_end_ms &&
           Station(a) == Station(b);
  };
  // Stable, so that the rows of one key and source stay in the order they were added.
  std::stable_sort(order_.begin(), order_.end(), [&](uint32_t ia, uint32_t ib) {
    const Row& a = rows_[ia];
    const Row& b = rows_[ib];
    if (const int c = Station(a).compare(Station(b)); c != 0) return c < 0;
    if (a.window_start_ms != b.window_start_ms) return a.window_start_ms < b.window_start_ms;
    if (a.window_end_ms != b.window_end_ms) return a.window_end_ms < b.window_end_ms;
    return Source(a) < Source(b);
  });
  size_t written = 0;
  for (size_t i = 0; i < order_.size();) {
    const Row& first = rows_[order_[i]];
    Row sum;
    size_t j = i;
    while (j < order_.size() && same_key(first, rows_[order_[j]])) {
      // The last row of this source wins; then the sources add up.
      size_t last = j;
      while (last + 1 < order_.size() && same_key(first, rows_[order_[last + 1]]) &&
             Source(rows_[order_[last + 1]]) == Source(rows_[order_[j]])) {
        ++last;
      }
      const Row& r = rows_[order_[last]];
      if (j == i) {
        sum = r;
      } else {
        sum.entries += r.entries;
        sum.exits += r.exits;
        sum.events += r.events;
        sum.final = sum.final && r.final;
        sum.first_event_ms = std::min(sum.first_event_ms, r.first_event_ms);
        sum.last_event_ms = std::max(sum.last_event_ms, r.last_event_ms);
      }
      j = last + 1;
    }
    AppendCopyText(Station(first), out);
    out->push_back('\t');
    base::AppendIsoUtc(sum.window_start_ms, out);
    out->push_back('\t');
    base::AppendIsoUtc(sum.window_end_ms, out);
    out->push_back('\t');
    AppendInt(sum.entries, out);
    out->push_back('\t');
    AppendInt(sum.exits, out);
    out->push_back('\t');
    AppendInt(sum.events, out);
    out->append(sum.final ? "\tt\t" : "\tf\t");
    AppendTime(sum.first_event_ms, out);
    out->push_back('\t');
    AppendTime(sum.last_event_ms, out);
    out->push_back('\n');
    ++written;
    i = j;
  }
  return written;
}

}  // namespace pg

namespace {

// libpq, loaded by MakePostgresSink() before any sink can call it.
const LibPq& Pq() {
  static const LibPq* const pq = *LoadLibPq();
  return *pq;
}

struct ResultDeleter {
  void operator()(PGresult* r) const { Pq().PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, ResultDeleter>;

// libpq messages span lines ("...failed: FATAL:  ...\n\tIs the server running...\n").
std::string OneLine(std::string_view text) {
  std::string out;
  bool space = false;
  for (char c : text) {
    const bool ws = c == '\n' || c == '\r' || c == '\t' || c == ' ';
    if (ws) {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

// `text` with every "quoted" fragment longer than one character replaced by "...": libpq's DSN
// parse errors quote the text they choked on, which may be part of a password.
std::string MaskQuoted(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    const size_t open = text.find('"', i);
    const size_t close = open == std::string_view::npos ? open : text.find('"', open + 1);
    if (close == std::string_view::npos) {
      out.append(text.substr(i));
      break;
    }
    out.append(text.substr(i, open - i));
    out.append(close - open == 2 ? text.substr(open, 3) : "\"...\"");
    i = close + 1;
  }
  return out;
}

// The columns the sink knows, with the types it accepts (as regtype prints them). `required`
// ones must exist; the others are written when the table has them.
struct ColumnSpec {
  const char* name;
  const char* type;
  const char* also;  // a second accepted type, or null
  bool required;
};
constexpr ColumnSpec kColumnSpecs[] = {
    {"station", "text", "character varying", true},
    {"window_start", "timestamp with time zone", nullptr, true},
    {"window_end", "timestamp with time zone", nullptr, true},
    {"entries", "bigint", nullptr, true},
    {"exits", "bigint", nullptr, true},
    {"events", "bigint", nullptr, true},
    {"final", "boolean", nullptr, false},
    {"first_event", "timestamp with time zone", nullptr, false},
    {"last_event", "timestamp with time zone", nullptr, false},
    {"updated_at", "timestamp with time zone", nullptr, false},
};
constexpr size_t kKeyColumns = 3;     // station, window_start, window_end
constexpr size_t kStagedColumns = 9;  // station .. last_event; updated_at is now()

std::string Expected(const ColumnSpec& c) {
  return c.also == nullptr ? c.type : std::string(c.type) + " or " + c.also;
}

constexpr const char* kCreateStage =
    "BEGIN; CREATE TEMP TABLE turnstiled_stage (station text, window_start timestamptz, "
    "window_end timestamptz, entries bigint, exits bigint, events bigint, final boolean, "
    "first_event timestamptz, last_event timestamptz) ON COMMIT DROP";

constexpr size_t kCopyChunk = 1 << 20;

class PostgresSink final : public Sink {
 public:
  PostgresSink(config::SinkConfig config, const pg::TableName& table)
      : config_(std::move(config)),
        quoted_table_((table.schema.empty() ? "" : pg::QuoteIdent(table.schema) + ".") +
                      pg::QuoteIdent(table.name)) {}
  ~PostgresSink() override { Disconnect(); }
  PostgresSink(const PostgresSink&) = delete;
  PostgresSink& operator=(const PostgresSink&) = delete;

  base::Status Open() override { return Connect(); }

  base::Status Write(std::span<const window::WindowRow> rows) override {
    for (const window::WindowRow& r : rows) batch_.Add(r);
    encoded_ = false;
    return {};
  }

  base::Status Flush() override;

  // The pool flushes before it closes; rows still here were never acknowledged.
  base::Status Close() override {
    Disconnect();
    if (batch_.empty()) return {};
    return base::Status::Unavailable(Prefix() + ": closed with " + std::to_string(batch_.size()) +
                                     " rows not written (not acknowledged: they are read again)");
  }

  uint64_t BytesWritten() const override { return bytes_written_; }

 private:
  enum class Step { kBegin, kLater };
  // Connects, then creates or checks the table and builds the upsert.
  base::Status Connect();
  base::Status PrepareTable();
  base::Status CheckColumns(const std::string& oid, std::vector<bool>* present);
  base::Status CheckUniqueKey(const std::string& oid);
  // One upsert transaction of the encoded batch. `*failed_at` tells whether BEGIN failed.
  base::Status Upsert(Step* failed_at);
  // Runs `sql` (with text parameters) and expects `want`.
  base::Status Exec(std::string_view what, const std::string& sql, ExecStatusType want,
                    std::initializer_list<const char*> params = {}, PgResult* out = nullptr);
  // A failed step as a Status of the right class; drops the connection when it is lost.
  base::Status Failure(std::string_view what, const PGresult* res);
  base::Status TableError(std::string text) const {
    return base::Status::InvalidArgument(Prefix() + ": table " + display_table_ + ": " + text);
  }
  // The caller names the sink; the server is named by host, port and database only.
  std::string Prefix() const { return server_.empty() ? "postgres" : server_; }
  void Disconnect() {
    if (conn_ != nullptr) Pq().PQfinish(conn_);
    conn_ = nullptr;
  }

  // Constant after construction.
  const config::SinkConfig config_;
  const std::string quoted_table_;  // as configured, quoted

  PGconn* conn_ = nullptr;  // null when not connected
  std::string server_;      // host:port/dbname of the last attempt; never the DSN
  std::string target_;      // the table, schema-qualified and quoted, once resolved
  std::string display_table_ = quoted_table_;
  std::string upsert_sql_;
  pg::CopyBatch batch_;
  std::string copy_;      // batch_ as COPY text
  bool encoded_ = false;  // copy_ holds batch_
  uint64_t bytes_written_ = 0;
};

base::Status PostgresSink::Connect() {
  Disconnect();
  // Our defaults come before the DSN (expanded from "dbname"), which overrides any of them;
  // client_encoding comes after it, because the COPY text is UTF-8.
  const char* const params[][2] = {
      {"connect_timeout", "5"},           {"keepalives", "1"},
      {"keepalives_idle", "30"},          {"keepalives_interval", "10"},
      {"keepalives_count", "3"},          {"tcp_user_timeout", "30000"},
      {"application_name", "turnstiled"}, {"options", "-c statement_timeout=60000"},
      {"dbname", config_.dsn.c_str()},    {"client_encoding", "UTF8"}};
  constexpr size_t kParams = sizeof params / sizeof params[0];
  const char* keys[kParams + 1] = {};
  const char* values[kParams + 1] = {};
  for (size_t i = 0; i < kParams; ++i) {
    keys[i] = params[i][0];
    values[i] = params[i][1];
  }
  conn_ = Pq().PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (conn_ == nullptr) return base::Status::Unavailable(Prefix() + ": out of memory");
  const char* host = Pq().PQhost(conn_);
  const char* port = Pq().PQport(conn_);
  const char* db = Pq().PQdb(conn_);
  server_ = std::string(host != nullptr && *host != '\0' ? host : "localhost") + ":" +
            (port != nullptr && *port != '\0' ? port : "5432") + "/" + (db != nullptr ? db : "");
  if (Pq().PQstatus(conn_) != CONNECTION_OK) {
    const std::string why = OneLine(Pq().PQerrorMessage(conn_));
    Disconnect();
    std::string msg = base::Redact(Prefix() + ": cannot connect: " + why);
    if (pg::IsPermanentConnectError(why)) return base::Status::InvalidArgument(std::move(msg));
    return base::Status::Unavailable(std::move(msg));
  }
  // libpq prints server notices to stderr by default: keep them in our log format.
  Pq().PQsetNoticeProcessor(
      conn_,
      [](void* name, const char* message) {
        base::Log(base::LogLevel::kDebug, "sink", "postgres notice",
                  {{"sink", *static_cast<const std::string*>(name)},
                   {"notice", base::Redact(OneLine(message))}});
      },
      const_cast<void*>(static_cast<const void*>(&config_.name)));
  base::Log(base::LogLevel::kInfo, "sink", "postgres connected",
            {{"sink", config_.name}, {"server", base::Redact(server_)}});
  base::Status s = PrepareTable();
  if (!s.ok()) Disconnect();
  return s;
}

base::Status PostgresSink::Exec(std::string_view what, const std::string& sql, ExecStatusType want,
                                std::initializer_list<const char*> params, PgResult* out) {
  PgResult res(params.size() == 0
                   ? Pq().PQexec(conn_, sql.c_str())
                   : Pq().PQexecParams(conn_, sql.c_str(), static_cast<int>(params.size()), nullptr,
                                       params.begin(), nullptr, nullptr, 0));
  if (res != nullptr && Pq().PQresultStatus(res.get()) == want) {
    if (out != nullptr) *out = std::move(res);
    return {};
  }
  return Failure(what, res.get());
}

base::Status PostgresSink::Failure(std::string_view what, const PGresult* res) {
  const char* state = res != nullptr ? Pq().PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  std::string why = OneLine(res != nullptr ? Pq().PQresultErrorMessage(res) : "");
  if (why.empty()) why = OneLine(Pq().PQerrorMessage(conn_));
  if (why.empty() && res != nullptr) why = Pq().PQresStatus(Pq().PQresultStatus(res));
  const bool lost = Pq().PQstatus(conn_) != CONNECTION_OK;
  const bool retry = lost || (state != nullptr && pg::IsRetryableSqlState(state));
  std::string msg = Prefix() + ": " + std::string(what) + ": " + why;
  if (state != nullptr && *state != '\0') msg += std::string(" (SQLSTATE ") + state + ")";
  if (lost) Disconnect();
  msg = base::Redact(msg);
  return retry ? base::Status::Unavailable(std::move(msg))
               : base::Status::InvalidArgument(std::move(msg));
}

base::Status PostgresSink::PrepareTable() {
  static const std::string kResolve =
      "SELECT c.oid::text, n.nspname, c.relname, c.relkind FROM pg_catalog.pg_class c "
      "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
      "WHERE c.oid = pg_catalog.to_regclass($1)";
  PgResult found;
  base::Status s =
      Exec("look up table", kResolve, PGRES_TUPLES_OK, {quoted_table_.c_str()}, &found);
  if (!s.ok()) return s;
  if (Pq().PQntuples(found.get()) == 0) {
    const std::string create =
        "CREATE TABLE IF NOT EXISTS " + quoted_table_ +
        " (station text NOT NULL, window_start timestamptz NOT NULL, window_end timestamptz NOT "
        "NULL, entries bigint NOT NULL, exits bigint NOT NULL, events bigint NOT NULL, final "
        "boolean, first_event timestamptz, last_event timestamptz, updated_at timestamptz NOT "
        "NULL DEFAULT now(), PRIMARY KEY (station, window_start, window_end))";
    PgResult res(Pq().PQexec(conn_, create.c_str()));
    if (Pq().PQresultStatus(res.get()) != PGRES_COMMAND_OK) {
      const char* state = Pq().PQresultErrorField(res.get(), PG_DIAG_SQLSTATE);
      // Another instance creating the same table at the same moment: look again shortly.
      if (state != nullptr &&
          (std::strcmp(state, "42P07") == 0 || std::strcmp(state, "23505") == 0)) {
        return base::Status::Unavailable(Prefix() + ": table " + quoted_table_ +
                                         " is being created by another session");
      }
      return Failure("create table " + quoted_table_, res.get());
    }
    s = Exec("look up table", kResolve, PGRES_TUPLES_OK, {quoted_table_.c_str()}, &found);
    if (!s.ok()) return s;
    if (Pq().PQntuples(found.get()) == 0) {
      return base::Status::InvalidArgument(Prefix() + ": table " + quoted_table_ +
                                           " does not exist after CREATE TABLE (check the "
                                           "search_path)");
    }
    base::Log(base::LogLevel::kInfo, "sink", "postgres table created",
              {{"sink", config_.name},
               {"table", std::string(Pq().PQgetvalue(found.get(), 0, 1)) + "." +
                             Pq().PQgetvalue(found.get(), 0, 2)}});
  }
  const std::string oid = Pq().PQgetvalue(found.get(), 0, 0);
  const std::string schema = Pq().PQgetvalue(found.get(), 0, 1);
  const std::string name = Pq().PQgetvalue(found.get(), 0, 2);
  const char kind = *Pq().PQgetvalue(found.get(), 0, 3);
  display_table_ = schema + "." + name;
  target_ = pg::QuoteIdent(schema) + "." + pg::QuoteIdent(name);
  if (kind != 'r' && kind != 'p') {
    return TableError(std::string("is not a table (pg_class.relkind '") + kind +
                      "'); the sink upserts into a table");
  }
  std::vector<bool> present;
  s = CheckColumns(oid, &present);
  if (!s.ok()) return s;
  s = CheckUniqueKey(oid);
  if (!s.ok()) return s;

  // INSERT ... SELECT ... ON CONFLICT DO UPDATE, over the columns the table has. A row that is
  // already there unchanged is left alone (a replay rewrites nothing).
  std::string cols, select, set, old_values, new_values;
  for (size_t i = 0; i < std::size(kColumnSpecs); ++i) {
    if (!present[i]) continue;
    const std::string q = pg::QuoteIdent(kColumnSpecs[i].name);
    const bool updated_at = i >= kStagedColumns;
    cols += (cols.empty() ? "" : ", ") + q;
    select += (select.empty() ? "" : ", ") + (updated_at ? std::string("now()") : q);
    if (i < kKeyColumns) continue;
    set += (set.empty() ? "" : ", ") + q + " = " + (updated_at ? "now()" : "EXCLUDED." + q);
    if (updated_at) continue;
    old_values += (old_values.empty() ? "t." : ", t.") + q;
    new_values += (new_values.empty() ? "EXCLUDED." : ", EXCLUDED.") + q;
  }
  upsert_sql_ = "INSERT INTO " + target_ + " AS t (" + cols + ") SELECT " + select +
                " FROM pg_temp.turnstiled_stage ON CONFLICT (station, window_start, window_end) "
                "DO UPDATE SET " +
                set + " WHERE (" + old_values + ") IS DISTINCT FROM (" + new_values + ")";
  return {};
}

base::Status PostgresSink::CheckColumns(const std::string& oid, std::vector<bool>* present) {
  static const std::string kColumnsSql =
      "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), "
      "a.atttypid::pg_catalog.regtype::text, "
      "(a.attnotnull AND NOT a.atthasdef AND a.attidentity = '' AND a.attgenerated = '')::text "
      "FROM pg_catalog.pg_attribute a "
      "WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum";
  PgResult cols;
  base::Status s = Exec("read columns", kColumnsSql, PGRES_TUPLES_OK, {oid.c_str()}, &cols);
  if (!s.ok()) return s;
  present->assign(std::size(kColumnSpecs), false);
  for (int r = 0; r < Pq().PQntuples(cols.get()); ++r) {
    const std::string_view name = Pq().PQgetvalue(cols.get(), r, 0);
    const std::string_view shown = Pq().PQgetvalue(cols.get(), r, 1);
    const std::string_view type = Pq().PQgetvalue(cols.get(), r, 2);
    const bool needs_value = std::string_view(Pq().PQgetvalue(cols.get(), r, 3)) == "true";
    const auto spec = std::find_if(std::begin(kColumnSpecs), std::end(kColumnSpecs),
                                   [&](const ColumnSpec& c) { return name == c.name; });
    if (spec == std::end(kColumnSpecs)) {
      if (needs_value) {
        return TableError("column " + std::string(name) +
                          " is NOT NULL without a default, and the sink does not write it");
      }
      continue;
    }
    if (type != spec->type && (spec->also == nullptr || type != spec->also)) {
      return TableError("column " + std::string(name) + " has type " + std::string(shown) +
                        ", expected " + Expected(*spec));
    }
    (*present)[static_cast<size_t>(spec - std::begin(kColumnSpecs))] = true;
  }
  for (size_t i = 0; i < std::size(kColumnSpecs); ++i) {
    if (kColumnSpecs[i].required && !(*present)[i]) {
      return TableError(std::string("column ") + kColumnSpecs[i].name + " is missing (expected " +
                        Expected(kColumnSpecs[i]) + ")");
    }
  }
  return {};
}

base::Status PostgresSink::CheckUniqueKey(const std::string& oid) {
  // ON CONFLICT (station, window_start, window_end) needs a unique index on exactly those
  // columns, without a predicate or expressions, that is not deferrable.
  static const std::string kKeySql =
      "SELECT count(*) FROM pg_catalog.pg_index i WHERE i.indrelid = $1::oid AND i.indisunique "
      "AND i.indimmediate AND i.indpred IS NULL AND i.indexprs IS NULL AND i.indnkeyatts = 3 "
      "AND ARRAY(SELECT a.attname::text FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(n, o) "
      "JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n "
      "WHERE k.o <= i.indnkeyatts ORDER BY 1) = ARRAY['station', 'window_end', 'window_start']";
  PgResult res;
  base::Status s = Exec("read indexes", kKeySql, PGRES_TUPLES_OK, {oid.c_str()}, &res);
  if (!s.ok()) return s;
  if (std::string_view(Pq().PQgetvalue(res.get(), 0, 0)) == "0") {
    return TableError(
        "no primary key or unique constraint on (station, window_start, window_end); the upsert "
        "needs one");
  }
  return {};
}

base::Status PostgresSink::Upsert(Step* failed_at) {
  *failed_at = Step::kBegin;
  base::Status s = Exec("begin", kCreateStage, PGRES_COMMAND_OK);
  if (!s.ok()) return s;
  *failed_at = Step::kLater;
  s = Exec("copy", "COPY pg_temp.turnstiled_stage FROM STDIN", PGRES_COPY_IN);
  if (!s.ok()) return s;
  for (size_t off = 0; off < copy_.size(); off += kCopyChunk) {
    const size_t n = std::min(kCopyChunk, copy_.size() - off);
    if (Pq().PQputCopyData(conn_, copy_.data() + off, static_cast<int>(n)) != 1) {
      return Failure("copy", nullptr);
    }
  }
  if (Pq().PQputCopyEnd(conn_, nullptr) != 1) return Failure("copy", nullptr);
  PgResult copied(Pq().PQgetResult(conn_));
  while (PGresult* extra = Pq().PQgetResult(conn_)) Pq().PQclear(extra);
  if (Pq().PQresultStatus(copied.get()) != PGRES_COMMAND_OK) return Failure("copy", copied.get());
  s = Exec("upsert", upsert_sql_, PGRES_COMMAND_OK);
  if (!s.ok()) return s;
  PgResult commit;
  s = Exec("commit", "COMMIT", PGRES_COMMAND_OK, {}, &commit);
  if (!s.ok()) return s;
  // A COMMIT of a transaction that failed reports ROLLBACK, not an error.
  if (std::string_view(Pq().PQcmdStatus(commit.get())) != "COMMIT") {
    return base::Status::Unavailable(Prefix() + ": commit: the transaction was rolled back");
  }
  return {};
}

base::Status PostgresSink::Flush() {
  if (batch_.empty()) return {};
  bool fresh = false;
  if (conn_ == nullptr || Pq().PQstatus(conn_) != CONNECTION_OK) {
    base::Status s = Connect();
    if (!s.ok()) return s;
    fresh = true;
  }
  if (!encoded_) {
    copy_.clear();
    batch_.Encode(&copy_);
    encoded_ = true;
  }
  Step failed_at;
  base::Status s = Upsert(&failed_at);
  // A connection that sat idle may have been closed by the server (idle_session_timeout, a
  // restart) without libpq knowing: when nothing was sent yet, reconnect once right away.
  if (!s.ok() && !fresh && failed_at == Step::kBegin && conn_ == nullptr) {
    s = Connect();
    if (s.ok()) s = Upsert(&failed_at);
  }
  if (!s.ok()) {
    if (conn_ != nullptr) {
      const PGTransactionStatusType t = Pq().PQtransactionStatus(conn_);
      if (t == PQTRANS_ACTIVE) {
        Disconnect();  // stuck mid-COPY: the connection cannot be reused
      } else if (t == PQTRANS_INTRANS || t == PQTRANS_INERROR) {
        PgResult rollback(Pq().PQexec(conn_, "ROLLBACK"));
        if (Pq().PQresultStatus(rollback.get()) != PGRES_COMMAND_OK) Disconnect();
      }
    }
    return s;
  }
  bytes_written_ += copy_.size();
  batch_.Clear();
  copy_.clear();
  encoded_ = false;
  return {};
}

}  // namespace

base::Result<std::unique_ptr<Sink>> MakePostgresSink(const config::SinkConfig& config) {
  // The caller (the pipeline) puts the sink's name before these messages.
  auto table = pg::ParseTableName(config.table);
  if (!table.ok()) return table.status();
  if (config.dsn.empty()) return base::Status::InvalidArgument("a postgres sink needs a dsn");
  if (auto pq = LoadLibPq(); !pq.ok()) return pq.status();
  // A DSN in key=value or URI form is checked now, so a typo is a config error at start. A
  // bare word is a database name. libpq quotes the fragment it could not parse, which may be
  // part of a password: MaskQuoted() drops it; only the name of an unknown option is kept.
  const std::string_view dsn = config.dsn;
  if (dsn.find('=') != std::string_view::npos || dsn.starts_with("postgres://") ||
      dsn.starts_with("postgresql://")) {
    char* err = nullptr;
    PQconninfoOption* opts = Pq().PQconninfoParse(config.dsn.c_str(), &err);
    if (opts == nullptr) {
      std::string why = err != nullptr ? OneLine(err) : "out of memory";
      Pq().PQfreemem(err);
      if (!why.starts_with("invalid connection option")) why = MaskQuoted(why);
      return base::Status::InvalidArgument(base::Redact("invalid dsn: " + why));
    }
    Pq().PQconninfoFree(opts);
  }
  return std::unique_ptr<Sink>(std::make_unique<PostgresSink>(config, *table));
}

}  // namespace turnstiled::sink
