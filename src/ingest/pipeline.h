// Pipeline: sources -> shards -> writer pool -> sinks, wired, started and stopped in one place.
//
//   source threads --(Router, lock-free queues)--> shard threads --(WriterPool)--> sink threads
//
// Start order: sinks, shards, metrics endpoint, sources. Stop order (SPEC §7, written down in
// docs/ARCHITECTURE.md and exercised by the tests):
//   1. stop fetching: sources leave their loops and send their last progress;
//   2. shards process what is queued, then emit what is due (everything with --drain, or when
//      every source finished its input);
//   3. the writer pool writes and flushes what was emitted;
//   4. sources commit their offsets, only if every sink acknowledged everything;
//   5. sources close, then everything is torn down in reverse order of construction.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "config/config.h"
#include "ingest/ingestor.h"
#include "ingest/source.h"
#include "live/hub.h"
#include "metrics/http_server.h"
#include "metrics/metrics.h"
#include "sink/dead_letter.h"
#include "sink/writer_pool.h"
#include "state/checkpointer.h"
#include "window/shard.h"

namespace turnstiled::ingest {

struct RunOptions {
  bool available_now = false;  // consume what the topics hold at start, emit all, commit, exit
  bool drain = false;  // on stop, emit open windows instead of leaving them to the next start
  std::string metrics_listen_override;  // tests: "127.0.0.1:0"
  // Set by a signal before the pipeline exists: start-up work that can wait on a broker (the
  // end offsets of --available-now) gives up. Borrowed; may be null.
  const std::atomic<bool>* cancel = nullptr;
};

class Pipeline {
 public:
  static base::Result<std::unique_ptr<Pipeline>> Create(const config::Config& config,
                                                        const RunOptions& options);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Runs until the input ends or RequestStop(). Returns OK when every emitted row was
  // acknowledged by every sink (and offsets were committed where there are any).
  base::Status Run();
  // Safe from any thread (the signal thread calls it).
  void RequestStop() {
    int64_t expected = 0;
    stop_requested_ns_.compare_exchange_strong(
        expected, std::chrono::steady_clock::now().time_since_epoch().count());
    stop_.store(true);
  }
  int metrics_port() const { return http_ ? http_->port() : 0; }
  // The fields of a progress line: records in, watermark, lag, windows emitted, drops by reason,
  // the last checkpoint's age. Thread-safe (reads metrics).
  std::vector<std::pair<std::string_view, std::string>> ProgressFields() const;
  // SIGHUP: reopens the dead-letter file (logrotate). Thread-safe.
  base::Status ReopenFiles() { return dead_letter_->Reopen(); }
  // "" when the pipeline can work: the sources hold partitions (or read files) and every sink
  // is up; otherwise why not. Thread-safe; what /readyz answers.
  std::string NotReadyReason() const;
  // "" while every source and shard thread loops (a shard blocked on a full sink queue counts
  // as looping: that wait is backpressure, not a hang); otherwise which is stuck. Thread-safe;
  // what /healthz answers and what gates the systemd watchdog.
  std::string StuckReason() const;
  metrics::PipelineMetrics& metrics() { return *metrics_; }

 private:
  class Output;
  Pipeline(const config::Config& config, const RunOptions& options);
  base::Status Init();
  void ShardLoop(int index);
  // Ends the live view's streams (every client gets what is left, then `end`), briefly
  // waiting for the clients to go, before the HTTP servers stop.
  void EndLive();

  // Constant after construction.
  const config::Config config_;
  const RunOptions options_;
  int num_shards_ = 1;

  // Built by Init(), in construction order; destroyed in reverse.
  std::unique_ptr<metrics::PipelineMetrics> metrics_;
  std::unique_ptr<sink::DeadLetter> dead_letter_;
  std::unique_ptr<sink::WriterPool> writers_;
  std::unique_ptr<state::Checkpointer> checkpointer_;  // Kafka only
  std::unique_ptr<Output> output_;
  PartitionRegistry partitions_;
  std::vector<std::unique_ptr<ShardChannel>> channels_;
  std::vector<std::unique_ptr<window::Shard>> shards_;
  std::vector<std::unique_ptr<Source>> sources_;
  std::unique_ptr<live::Hub> live_;  // null when the live view is off
  std::unique_ptr<metrics::HttpServer> http_;
  std::unique_ptr<metrics::HttpServer> live_http_;  // live.listen, when set

  std::atomic<bool> stop_{false};
  std::atomic<int64_t> stop_requested_ns_{0};
  std::mutex fail_mu_;
  base::Status failure_;  // guarded by fail_mu_: why a source stopped the run
  std::atomic<bool> sources_done_{false};
  std::atomic<bool> close_all_{false};
  std::vector<std::thread> shard_threads_;
  // Steady-clock ns of each shard loop's last turn; while the sources run (for StuckReason).
  std::unique_ptr<std::atomic<int64_t>[]> shard_beats_;
  std::atomic<bool> sources_running_{false};
};

}  // namespace turnstiled::ingest
