// Sink: where window rows go. One implementation per `sinks[].type`, picked by MakeSink().
//
// Lifecycle: Open() -> Write(rows)* (the pool calls WriteBatch) -> Flush() ... -> Close(). All
// calls come from a single writer thread, so an implementation needs no locks. Retry, batching and
// timing live once, in the WriterPool, not in each sink: a sink returns kUnavailable and the pool
// retries the same rows later (so Write must be idempotent for a batch it failed on).
//
// Durability: rows passed to Write() are safe only after Flush() returns OK. The pool
// acknowledges rows (and so lets offsets be committed) only after a successful Flush().
//
// Error classes: a status with IsRetryable() (kUnavailable: a connection refused, a broker or
// server down, a disk momentarily full) is retried by the pool with capped exponential backoff
// and jitter, and the same rows are written again. Any other code is permanent (a path under a
// regular file, permission denied, a table with the wrong schema, an authentication failure):
// the pool stops the job with one error naming the sink, and acknowledges nothing more. Error
// messages must never hold a password (pass DSNs through base::Redact()).
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "config/config.h"
#include "window/row.h"

namespace turnstiled::sink {

// A batch of rows as shards emit it, shared by every sink it goes to.
using RowBatchPtr = std::shared_ptr<const std::vector<window::WindowRow>>;

class Sink {
 public:
  virtual ~Sink() = default;
  virtual base::Status Open() = 0;
  virtual base::Status Write(std::span<const window::WindowRow> rows) = 0;
  // Write(*rows), called by the WriterPool. A sink that only reads its rows at Flush() may keep
  // the batch itself, until then, instead of copying the rows.
  virtual base::Status WriteBatch(const RowBatchPtr& rows) { return Write(*rows); }
  virtual base::Status Flush() = 0;
  virtual base::Status Close() = 0;
  // Payload bytes made durable so far (for turnstiled_sink_bytes_total). Writer thread only.
  virtual uint64_t BytesWritten() const { return 0; }
  // Files published so far (file sink; turnstiled_sink_files_total). Writer thread only.
  virtual uint64_t FilesWritten() const { return 0; }
  // Bytes of the sink's write-ahead journal: flushes acknowledged whose output is not synced
  // on its own yet (file sink; turnstiled_sink_journal_bytes). Writer thread only.
  virtual uint64_t JournalBytes() const { return 0; }
};

// The one table of sink types.
base::Result<std::unique_ptr<Sink>> MakeSink(const config::SinkConfig& config);

}  // namespace turnstiled::sink
