// Sink: where window rows go. One implementation per `sinks[].type`, picked by MakeSink().
//
// Lifecycle: Open() -> Write(rows)* -> Flush() ... -> Close(). All calls come from a single
// writer thread, so an implementation needs no locks. Retry, batching and timing live once,
// in the WriterPool, not in each sink: a sink returns kUnavailable and the pool retries the
// same rows later (so Write must be idempotent for a batch it failed on).
//
// Durability: rows passed to Write() are safe only after Flush() returns OK. The pool
// acknowledges rows (and so lets offsets be committed) only after a successful Flush().
#pragma once

#include <memory>
#include <span>
#include <string>

#include "base/status.h"
#include "config/config.h"
#include "window/row.h"

namespace turnstiled::sink {

class Sink {
 public:
  virtual ~Sink() = default;
  virtual base::Status Open() = 0;
  virtual base::Status Write(std::span<const window::WindowRow> rows) = 0;
  virtual base::Status Flush() = 0;
  virtual base::Status Close() = 0;
};

// The one table of sink types.
base::Result<std::unique_ptr<Sink>> MakeSink(const config::SinkConfig& config);

}  // namespace turnstiled::sink
