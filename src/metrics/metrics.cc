#include "metrics/metrics.h"

#include <librdkafka/rdkafka.h>
#include <zstd.h>

#include "base/log.h"

#ifndef TURNSTILED_VERSION
#define TURNSTILED_VERSION "0.0.0"
#endif

namespace turnstiled::metrics {

namespace {
// Fine up to 10 ms, where the emit delay's target lies (p99 under 5 ms, SPEC §9), so that a
// quantile read from the buckets is not just "somewhere between 2 and 5 ms".
prometheus::Histogram::BucketBoundaries LatencyBuckets() {
  return {0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.025, 0.05,
          0.1,    0.25,  0.5,   1,     2.5,   5,     10,     30,   60};
}
}  // namespace

PipelineMetrics::PipelineMetrics(const std::vector<std::string>& decode_reasons,
                                 const std::vector<std::string>& drop_reasons,
                                 const std::vector<std::string>& sink_names, int shards)
    : registry(std::make_shared<prometheus::Registry>()) {
  using prometheus::BuildCounter;
  using prometheus::BuildGauge;
  using prometheus::BuildHistogram;
  auto& r = *registry;
  BuildGauge()
      .Name("turnstiled_build_info")
      .Help("Build information; the value is 1.")
      .Register(r)
      .Add({{"version", TURNSTILED_VERSION},
            {"commit", TURNSTILED_COMMIT},
            {"librdkafka", rd_kafka_version_str()},
            {"zstd", ZSTD_versionString()}})
      .Set(1);
  consumed_records = &BuildCounter()
                          .Name("turnstiled_consumed_records_total")
                          .Help("Messages (Kafka) or lines (files) read from the source.")
                          .Register(r)
                          .Add({});
  consumed_bytes = &BuildCounter()
                        .Name("turnstiled_consumed_bytes_total")
                        .Help("Bytes of message payloads read from the source.")
                        .Register(r)
                        .Add({});
  auto& decode = BuildCounter()
                     .Name("turnstiled_decode_errors_total")
                     .Help("Messages that did not decode, by reason.")
                     .Register(r);
  for (const auto& reason : decode_reasons) {
    // "ok" and "header" share the decoder's enum but are not errors: no series for them.
    const bool error = reason != "ok" && reason != "header";
    decode_errors.push_back(error ? &decode.Add({{"reason", reason}}) : nullptr);
  }
  auto& drops = BuildCounter()
                    .Name("turnstiled_dropped_records_total")
                    .Help("Decoded records left out of every window, by reason.")
                    .Register(r);
  for (const auto& reason : drop_reasons) dropped.push_back(&drops.Add({{"reason", reason}}));
  counter_resets =
      &BuildCounter()
           .Name("turnstiled_register_resets_total")
           .Help("Cumulative readings whose delta exceeded format.max_delta and counted 0.")
           .Register(r)
           .Add({});
  windows_emitted = &BuildCounter()
                         .Name("turnstiled_windows_emitted_total")
                         .Help("Final window rows emitted.")
                         .Register(r)
                         .Add({});
  update_rows = &BuildCounter()
                     .Name("turnstiled_update_rows_emitted_total")
                     .Help("Non-final rows emitted for open windows (emit: update).")
                     .Register(r)
                     .Add({});
  dead_letters = &BuildCounter()
                      .Name("turnstiled_dead_letters_total")
                      .Help("Records written to the dead letter.")
                      .Register(r)
                      .Add({});
  auto& depth = BuildGauge()
                    .Name("turnstiled_queue_depth_batches")
                    .Help("Record batches waiting in each shard's queue.")
                    .Register(r);
  auto& open = BuildGauge()
                   .Name("turnstiled_open_windows")
                   .Help("Open (station, window) aggregates per shard.")
                   .Register(r);
  auto& wm = BuildGauge()
                 .Name("turnstiled_shard_watermark_timestamp_seconds")
                 .Help("Each shard's watermark, in seconds since the epoch.")
                 .Register(r);
  for (int s = 0; s < shards; ++s) {
    const std::string label = std::to_string(s);
    shard_queue_depth.push_back(&depth.Add({{"shard", label}}));
    open_windows.push_back(&open.Add({{"shard", label}}));
    shard_watermark.push_back(&wm.Add({{"shard", label}}));
  }
  partition_watermark =
      &BuildGauge()
           .Name("turnstiled_partition_watermark_timestamp_seconds")
           .Help("Highest event time seen per source partition, in seconds since the epoch.")
           .Register(r);
  consumer_lag = &BuildGauge()
                      .Name("turnstiled_consumer_lag_records")
                      .Help("Records between the consumer's position and the partition's end.")
                      .Register(r);
  assigned_partitions = &BuildGauge()
                             .Name("turnstiled_assigned_partitions")
                             .Help("Source partitions assigned to this instance.")
                             .Register(r)
                             .Add({});
  paused_partitions =
      &BuildGauge()
           .Name("turnstiled_paused_partitions")
           .Help("Assigned partitions whose fetching is paused because shards or sinks are behind.")
           .Register(r)
           .Add({});
  offset_commits = &BuildCounter()
                        .Name("turnstiled_offset_commits_total")
                        .Help("Offset commits made after sinks acknowledged.")
                        .Register(r)
                        .Add({});
  partition_conflicts =
      &BuildCounter()
           .Name("turnstiled_station_partition_conflicts_total")
           .Help("Records of a station that arrived on another input partition than its first.")
           .Register(r)
           .Add({});
  saturated_sums =
      &BuildCounter()
           .Name("turnstiled_saturated_sums_total")
           .Help("Window sums that would have overflowed 64 bits and were held at the limit.")
           .Register(r)
           .Add({});
  auto& checkpoints = BuildCounter()
                          .Name("turnstiled_checkpoints_total")
                          .Help(
                              "Checkpoints by result: ok, failed (a store refused), skipped "
                              "(sinks did not acknowledge in time).")
                          .Register(r);
  state.checkpoints_ok = &checkpoints.Add({{"result", "ok"}});
  state.checkpoints_failed = &checkpoints.Add({{"result", "failed"}});
  state.checkpoints_skipped = &checkpoints.Add({{"result", "skipped"}});
  state.checkpoint_duration =
      &BuildHistogram()
           .Name("turnstiled_checkpoint_duration_seconds")
           .Help("From a checkpoint's cut to its snapshots being durable.")
           .Register(r)
           .Add({}, prometheus::Histogram::BucketBoundaries{0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                            0.5, 1, 2.5, 5, 10, 30});
  state.last_checkpoint = &BuildGauge()
                               .Name("turnstiled_last_checkpoint_timestamp_seconds")
                               .Help("When the newest durable checkpoint was taken.")
                               .Register(r)
                               .Add({});
  state.checkpoint_bytes = &BuildGauge()
                                .Name("turnstiled_checkpoint_bytes")
                                .Help("Size of the newest checkpoint's snapshots, all partitions.")
                                .Register(r)
                                .Add({});
  auto& restores = BuildCounter()
                       .Name("turnstiled_state_restores_total")
                       .Help("Partitions assigned, by where their state came from.")
                       .Register(r);
  state.restores_local = &restores.Add({{"source", "local"}});
  state.restores_changelog = &restores.Add({{"source", "changelog"}});
  state.restores_none = &restores.Add({{"source", "none"}});
  auto& commits = BuildCounter()
                      .Name("turnstiled_commits_total")
                      .Help("Kafka offset commits by result.")
                      .Register(r);
  state.commits_ok = &commits.Add({{"result", "ok"}});
  state.commits_failed = &commits.Add({{"result", "failed"}});
  auto& written = BuildCounter()
                      .Name("turnstiled_sink_rows_written_total")
                      .Help("Rows written and acknowledged (flushed) by each sink.")
                      .Register(r);
  auto& failed = BuildCounter()
                     .Name("turnstiled_sink_rows_failed_total")
                     .Help("Rows in sink writes or flushes that failed (they are retried).")
                     .Register(r);
  auto& retried = BuildCounter()
                      .Name("turnstiled_sink_retries_total")
                      .Help("Sink write or flush attempts retried after a failure.")
                      .Register(r);
  auto& sdepth = BuildGauge()
                     .Name("turnstiled_sink_queue_depth_batches")
                     .Help("Row batches waiting for each sink.")
                     .Register(r);
  auto& delay =
      BuildHistogram()
          .Name("turnstiled_emit_delay_seconds")
          .Help("Time from the watermark passing a window's end to the sink's acknowledgement.")
          .Register(r);
  auto& latency = BuildHistogram()
                      .Name("turnstiled_end_to_end_latency_seconds")
                      .Help(
                          "Time from the Kafka append of the newest record behind an emit to "
                          "the sink's acknowledgement of the emitted rows.")
                      .Register(r);
  auto& batches = BuildCounter()
                      .Name("turnstiled_sink_batches_total")
                      .Help("Batches each sink made durable (successful flushes).")
                      .Register(r);
  auto& flush_time = BuildHistogram()
                         .Name("turnstiled_sink_flush_duration_seconds")
                         .Help("Time each successful sink flush took.")
                         .Register(r);
  auto& bytes = BuildCounter()
                    .Name("turnstiled_sink_bytes_total")
                    .Help("Payload bytes each sink made durable.")
                    .Register(r);
  auto& files = BuildCounter()
                    .Name("turnstiled_sink_files_total")
                    .Help("Files each file sink published.")
                    .Register(r);
  auto& up = BuildGauge()
                 .Name("turnstiled_sink_up")
                 .Help("1 when the sink is open and its last operation succeeded, else 0.")
                 .Register(r);
  auto& journal = BuildGauge()
                      .Name("turnstiled_sink_journal_bytes")
                      .Help(
                          "Bytes in the file sink's journal after its last flush: what a machine "
                          "stop would have it write again at the next start.")
                      .Register(r);
  for (const auto& name : sink_names) {
    const std::map<std::string, std::string> l{{"sink", name}};
    sinks.push_back({&written.Add(l), &failed.Add(l), &retried.Add(l), &sdepth.Add(l),
                     &delay.Add(l, LatencyBuckets()), &latency.Add(l, LatencyBuckets()),
                     &batches.Add(l), &flush_time.Add(l, LatencyBuckets()), &bytes.Add(l),
                     &files.Add(l), &up.Add(l), &journal.Add(l)});
  }
}

}  // namespace turnstiled::metrics
