// PipelineMetrics: every metric the daemon exports, built in one place (SPEC §7).
//
// Names are turnstiled_<what>_<unit>; counters end in _total; labels come only from closed
// sets (decode reasons, drop reasons, sink names from the config, shard numbers).
// Prometheus counters and gauges are atomic, so any thread may update them; the hot path does
// so once per batch, never per record.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>
#include <vector>

namespace turnstiled::metrics {

struct SinkMetrics {
  prometheus::Counter* rows_written;
  prometheus::Counter* rows_failed;
  prometheus::Counter* retries;
  prometheus::Gauge* queue_depth;
  prometheus::Histogram* emit_delay;  // seconds from the watermark passing a window end to ack
  // Seconds from the Kafka append time of the newest record behind an emit to the ack.
  prometheus::Histogram* end_to_end_latency;
  prometheus::Counter* batches;           // successful flushes
  prometheus::Histogram* flush_duration;  // seconds per successful flush
  prometheus::Counter* bytes;             // payload bytes made durable
  prometheus::Counter* files;             // files published (file sink)
  prometheus::Gauge* up;                  // 1 when open and the last attempt succeeded
  prometheus::Gauge* journal_bytes;       // the file sink's journal, as of the last flush
};

// Checkpoints, restores and commits (SPEC §6; src/state/).
struct StateMetrics {
  prometheus::Counter* checkpoints_ok;
  prometheus::Counter* checkpoints_failed;
  prometheus::Counter* checkpoints_skipped;    // sinks did not acknowledge in time
  prometheus::Histogram* checkpoint_duration;  // seconds from the cut to durable
  prometheus::Gauge* last_checkpoint;          // unix seconds of the newest durable one
  prometheus::Gauge* checkpoint_bytes;         // size of the newest one, all partitions
  prometheus::Counter* restores_local;
  prometheus::Counter* restores_changelog;
  prometheus::Counter* restores_none;
  prometheus::Counter* commits_ok;
  prometheus::Counter* commits_failed;
};

struct PipelineMetrics {
  // Label sets: decode reasons and drop reasons in enum order, sink names, shard count.
  PipelineMetrics(const std::vector<std::string>& decode_reasons,
                  const std::vector<std::string>& drop_reasons,
                  const std::vector<std::string>& sink_names, int shards);

  std::shared_ptr<prometheus::Registry> registry;
  prometheus::Counter* consumed_records;
  prometheus::Counter* consumed_bytes;
  std::vector<prometheus::Counter*> decode_errors;  // by decode reason
  std::vector<prometheus::Counter*> dropped;        // by drop reason
  prometheus::Counter* counter_resets;
  prometheus::Counter* windows_emitted;
  prometheus::Counter* update_rows;
  prometheus::Counter* dead_letters;
  std::vector<prometheus::Gauge*> shard_queue_depth;           // batches waiting, by shard
  std::vector<prometheus::Gauge*> open_windows;                // by shard
  std::vector<prometheus::Gauge*> shard_watermark;             // seconds since the epoch, by shard
  prometheus::Family<prometheus::Gauge>* partition_watermark;  // by topic, partition
  prometheus::Family<prometheus::Gauge>* consumer_lag;         // by topic, partition
  prometheus::Gauge* assigned_partitions;
  prometheus::Gauge* paused_partitions;  // fetching paused for backpressure
  prometheus::Counter* offset_commits;   // == state.commits_ok; kept for dashboards
  prometheus::Counter* partition_conflicts;
  prometheus::Counter* saturated_sums;
  StateMetrics state;
  std::vector<SinkMetrics> sinks;  // in config order
};

}  // namespace turnstiled::metrics
