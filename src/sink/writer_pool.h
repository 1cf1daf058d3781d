// WriterPool: one writer thread per sink, with the retry, batching and timing every sink
// shares (STYLE: they live here once, not in each sink).
//
// Shards Submit() batches of rows; each sink's thread Write()s them and Flush()es as soon as
// its queue is empty (flush on close: a closed window waits for no timer), and under load, when
// the queue never empties, at `batch_rows` or once the oldest unflushed submission has waited
// FlushPeriod(), whichever comes first (that also bounds how long a file stays open: every flush
// closes every file it writes). A submission is never split between flushes. A retryable failure
// (Status::IsRetryable) of an open, write or flush is retried with capped exponential backoff and
// jitter (100 ms doubling up to 5 s, each wait drawn from its upper half) until it succeeds or the
// pool stops: rows are never dropped, and a sink that is down holds its queue, which fills, which
// blocks Submit(), which stalls the shards, which makes the Kafka sources pause fetching
// (backpressure, bounded memory). Any other failure is permanent: the sink stops, the failure
// handler is called once with an error naming the sink, and nothing more is acknowledged, so no
// offset moves past what the sink wrote.
//
// A submission is acknowledged when every sink has flushed it: Acked() only grows, and offsets
// may be committed for what it covers. Thread-safe: Submit() from any shard thread; Drain()
// and Stop() from the control thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "metrics/metrics.h"
#include "sink/sink.h"
#include "window/batch.h"
#include "window/row.h"

namespace turnstiled::sink {

class WriterPool {
 public:
  struct Entry {
    config::SinkConfig config;
    std::unique_ptr<Sink> sink;
  };
  // `metrics` may be null (tests); otherwise its sinks[] follow `entries` in order.
  WriterPool(std::vector<Entry> entries, metrics::PipelineMetrics* metrics,
             size_t queue_capacity = 64);
  ~WriterPool();
  WriterPool(const WriterPool&) = delete;
  WriterPool& operator=(const WriterPool&) = delete;

  using FailureHandler = std::function<void(const base::Status&)>;
  // Called once, from a writer thread, when a sink fails permanently. REQUIRES: before Start().
  void SetFailureHandler(FailureHandler handler) { on_failure_ = std::move(handler); }
  // Opens every sink (retrying in the background when one cannot open yet) and starts the
  // writer threads.
  void Start();
  // Queues rows for every sink; blocks while any sink's queue is full. Returns the sequence
  // number of this submission. `emitted` is when the watermark released the rows; `append_ms`
  // the newest ingest time (Kafka message timestamp, UTC ms) behind them, or window::kNoTime.
  // When a sink acknowledges the rows, the pool observes emit delay (from `emitted`) and
  // end-to-end latency (from `append_ms`), once per submission.
  uint64_t Submit(RowBatchPtr rows, std::chrono::steady_clock::time_point emitted,
                  int64_t append_ms = window::kNoTime);
  // One submission of several batches (a bounded input's last windows, gathered from every
  // shard): written in order and flushed together, never split, without merging their rows
  // into one vector first. Empty batches are skipped; REQUIRES: `parts` is not empty.
  uint64_t Submit(std::vector<RowBatchPtr> parts, std::chrono::steady_clock::time_point emitted,
                  int64_t append_ms = window::kNoTime);
  // Highest sequence number flushed by every sink.
  uint64_t Acked() const;
  uint64_t Submitted() const { return submitted_.load(); }
  // Asks every sink to flush now and waits until all submitted so far is acknowledged, or
  // `timeout` passes. Returns true when everything was acknowledged.
  bool Drain(std::chrono::milliseconds timeout);
  // Asks every sink to flush what it has now; does not wait.
  void RequestFlush();
  // Gives up: Submit() stops waiting and drops what it is given, the writers stop retrying.
  // For a stop whose shutdown_timeout has run out with a sink down; nothing dropped is
  // acknowledged, so no offset covering it is committed.
  void Abort();
  // Stops the writer threads after they have written what is queued (bounded by Drain's
  // caller) and closes the sinks.
  void Stop();
  // True once some sink failed permanently.
  bool Failed() const;
  // True while some sink's queue is full: Submit() blocks (backpressure).
  bool Saturated() const;
  // True while some sink's attempts have been failing for at least `for_at_least` (it is down
  // and being retried).
  bool Stalled(std::chrono::milliseconds for_at_least) const;
  // "" when every sink is open and its last attempt succeeded; otherwise why not.
  std::string NotReadyReason() const;

  // How long a written submission may wait for a flush while more keeps arriving (the queue
  // never empties): `flush_interval`, and for a file sink no longer than `roll_interval`. An
  // idle queue flushes at once, whatever this says.
  static std::chrono::milliseconds FlushPeriod(const config::SinkConfig& config);

 private:
  struct Item {
    std::vector<RowBatchPtr> parts;  // the submission's batches; none: a flush request
    uint64_t seq = 0;
    std::chrono::steady_clock::time_point emitted;
    int64_t append_ms = window::kNoTime;
  };
  struct Writer {
    Entry entry;
    metrics::SinkMetrics* metrics = nullptr;
    std::mutex mu;
    std::condition_variable cv;  // signalled on enqueue, dequeue and stop
    std::deque<Item> queue;      // guarded by mu
    std::atomic<uint64_t> acked{0};
    std::atomic<bool> healthy{false};
    std::atomic<bool> failed{false};  // permanently: its queue takes nothing more
    // Steady-clock ns of the first failure of the current run of failures; 0 when the last
    // attempt succeeded.
    std::atomic<int64_t> failing_since_ns{0};
    std::string last_error;  // guarded by mu
    std::thread thread;
  };

  void Run(Writer* w);
  // Retries `op` until it succeeds or the pool stops. Returns false when stopped first or when
  // the failure is permanent (then the writer is marked failed and the handler called).
  template <typename Op>
  bool Retry(Writer* w, const char* what, size_t rows, Op op);

  const size_t capacity_;
  std::vector<std::unique_ptr<Writer>> writers_;
  std::atomic<uint64_t> submitted_{0};
  std::mutex submit_mu_;  // keeps sequence numbers in queue order across shards
  std::atomic<bool> stopping_{false};
  bool started_ = false;
  FailureHandler on_failure_;  // constant after Start()
};

}  // namespace turnstiled::sink
