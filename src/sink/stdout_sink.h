// StdoutSink: rows for a person at a console, like Spark's console sink. Each non-empty Flush()
// prints one table of the rows written since the last one:
//
//   -------------------------------------------
//   Batch: 0
//   -------------------------------------------
//   +--------+--------------------+--------------------+-------+-----+------+
//   |station |window_start        |window_end          |entries|exits|events|
//   +--------+--------------------+--------------------+-------+-----+------+
//   |59 ST   |2024-01-06T04:00:00Z|2024-01-06T08:00:00Z|    120|   98|    42|
//   +--------+--------------------+--------------------+-------+-----+------+
//
// Text is left-aligned and numbers right-aligned. Control characters in a station name are shown
// as \xNN so one row stays one line. The table is written in pieces of about 1 MiB, then
// fflush: it is meant for demos and debugging, so nothing here is durable.
//
// Thread-compatible (one writer thread). The FILE* is borrowed and must outlive the sink.
#pragma once

#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "sink/sink.h"

namespace turnstiled::sink {

class StdoutSink final : public Sink {
 public:
  explicit StdoutSink(std::FILE* out = stdout) : out_(out) {}

  base::Status Open() override { return {}; }
  base::Status Write(std::span<const window::WindowRow> rows) override;
  // Keeps the batch until the next Flush(), which prints it: no copy of its rows.
  base::Status WriteBatch(const RowBatchPtr& rows) override;
  base::Status Flush() override;
  base::Status Close() override { return Flush(); }

 private:
  static constexpr size_t kWriteBytes = 1 << 20;

  std::FILE* const out_;  // borrowed
  // What the next Flush() prints, in order: batches kept whole, and rows copied by Write()
  // (held in batches of their own).
  std::vector<RowBatchPtr> held_;
  // The table being printed, up to about kWriteBytes at a time; kept from flush to flush.
  std::unique_ptr<char[]> buf_;
  size_t buf_size_ = 0;
  int64_t batch_ = 0;
};

}  // namespace turnstiled::sink
