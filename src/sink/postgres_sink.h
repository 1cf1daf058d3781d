// PostgresSink: the warehouse sink (SPEC §5 `postgres`). Window rows are upserted into one table,
// keyed by (station, window_start, window_end), with libpq:
//
//   BEGIN;
//   CREATE TEMP TABLE turnstiled_stage (...) ON COMMIT DROP;
//   COPY turnstiled_stage FROM STDIN;                         -- every row buffered since the
//   INSERT INTO <table> SELECT ... FROM turnstiled_stage       -- last successful Flush()
//     ON CONFLICT (station, window_start, window_end) DO UPDATE SET entries = EXCLUDED.entries, ...
//   COMMIT;
//
// Flush() returns OK only once COMMIT has, so rows are acknowledged only when they are in the
// table. A replay writes the same keys again and overwrites them: no duplicates.
//
// Open() connects and makes sure the table exists: it is created when missing; when present, its
// columns and its unique key are checked, and a table that cannot take the rows is a permanent
// error naming the table, the column, the type found and the type expected.
//
// Error classes (sink.h): a server that cannot be reached, a lost connection, an administrator
// shutdown, a serialization failure or deadlock, a timeout or insufficient resources are
// kUnavailable: the rows stay buffered, and the next Flush() reconnects (checking the table
// again) and writes them all again. Anything else (authentication, privileges, a wrong table)
// is kInvalidArgument. Messages name the server by host, port and database only, never by DSN.
// Close() writes nothing: the pool flushes first, and rows still buffered were never
// acknowledged, so their offsets were not committed.
//
// Thread-compatible: one writer thread, as every Sink.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "config/config.h"
#include "sink/sink.h"
#include "window/row.h"

namespace turnstiled::sink {

base::Result<std::unique_ptr<Sink>> MakePostgresSink(const config::SinkConfig& config);

// The pieces of the sink that need no server, exposed for postgres_sink_test.cc.
namespace pg {

// `table` from the config: `name` or `schema.name`. Each part is either a bare identifier,
// folded to lower case as PostgreSQL folds unquoted names, or a "double-quoted" one kept
// exactly ("" inside stands for one "). An empty schema means the first schema of the
// search_path, where CREATE TABLE puts a new table.
struct TableName {
  std::string schema;
  std::string name;
};
base::Result<TableName> ParseTableName(std::string_view table);

// `"name"`, with every " doubled: safe for any identifier.
std::string QuoteIdent(std::string_view name);

// Whether a server error with this SQLSTATE is worth retrying: connection exceptions (08),
// shutdown, cannot-connect-now and idle timeout (57P01-57P03, 57P05), statement timeouts (57014),
// serialization failures and deadlocks (40001, 40P01, 40003), insufficient resources (53), lock not
// available (55P03, 55006) and system errors (58).
bool IsRetryableSqlState(std::string_view sqlstate);

// Whether a failed connection attempt failed for good: authentication, an unknown role or
// database, or no pg_hba.conf entry. Anything else (refused, timed out, starting up, too many
// clients) is worth retrying.
bool IsPermanentConnectError(std::string_view message);

// CopyBatch: the rows written since the last successful flush, stored without an allocation
// per row (names in one string, the rest in one vector; both keep their capacity).
class CopyBatch {
 public:
  void Add(const window::WindowRow& row);
  void Clear();
  bool empty() const { return rows_.empty(); }
  size_t size() const { return rows_.size(); }

  // Appends the batch to `out` as COPY text rows of the stage table's nine columns, one per
  // (station, window_start, window_end), sorted by that key, and returns how many:
  //   - of the rows of one key from one input partition (`source`), the last added wins
  //     (emit: update sends a window again);
  //   - rows of one key from different partitions are partial sums of the window and are
  //     added up: entries, exits and events summed, final only if all are, the earliest
  //     first_event and the latest last_event.
  // Station names are escaped for COPY (\\ \t \n \r); a byte that is not part of valid UTF-8
  // is written as its Latin-1 character (as the JSON rows do) and NUL as U+FFFD, so that any
  // name loads into a UTF-8 database. Times are ISO-8601 UTC with milliseconds when not whole.
  size_t Encode(std::string* out);

 private:
  struct Row {
    size_t station = 0;  // offset in names_
    uint32_t station_len = 0;
    uint32_t source_len = 0;
    size_t source = 0;
    int64_t window_start_ms = 0;
    int64_t window_end_ms = 0;
    int64_t entries = 0;
    int64_t exits = 0;
    int64_t events = 0;
    int64_t first_event_ms = 0;
    int64_t last_event_ms = 0;
    bool final = true;
  };
  std::string_view Station(const Row& r) const {
    return {names_.data() + r.station, r.station_len};
  }
  std::string_view Source(const Row& r) const { return {names_.data() + r.source, r.source_len}; }

  std::string names_;  // station and source bytes of rows_
  std::vector<Row> rows_;
  std::vector<uint32_t> order_;  // Encode()'s scratch
};

}  // namespace pg
}  // namespace turnstiled::sink
