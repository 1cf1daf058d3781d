// Source: where records come from. Each source runs on its own thread (or threads) and feeds
// the shards through its Ingestor's Router.
//
// Run() returns when the input has ended (a bounded source, or --available-now) or when
// `stop` becomes true. Before returning it has sent its final progress to every shard:
// finished=true when its input really ended, so the shards may close every window.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "base/status.h"

namespace turnstiled::ingest {

class Source {
 public:
  virtual ~Source() = default;
  virtual void Run(const std::atomic<bool>& stop) = 0;
  // Called after every sink has acknowledged what this source's records produced: commits
  // the source's position so a restart resumes after it. A file source has nothing to commit.
  virtual base::Status Commit() { return base::Status::Ok(); }
  // Leaves the consumer group (or closes files). After Commit().
  virtual void Close() {}
  // "" when ready (partitions assigned, files open).
  virtual std::string NotReadyReason() const { return ""; }
  // Lets a shard hand back a processed batch.
  virtual class Router& router() = 0;
  // A source beats at least every few hundred milliseconds while Run() loops; 0 before.
  int64_t last_beat_ns() const { return beat_ns_.load(std::memory_order_relaxed); }

 protected:
  void Beat() {
    beat_ns_.store(std::chrono::steady_clock::now().time_since_epoch().count(),
                   std::memory_order_relaxed);
  }

 private:
  std::atomic<int64_t> beat_ns_{0};
};

}  // namespace turnstiled::ingest
