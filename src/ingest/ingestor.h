// Ingestor: what every source does with one message or line, whatever the source.
//
// Decode -> reject records too far in the future -> route to a shard, counting every outcome
// in plain per-thread counters that PublishMetrics() adds to Prometheus once per batch.
// Decode failures and future records go to the dead letter with their partition and offset.
//
// Thread-compatible: one per source thread.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "decode/decoder.h"
#include "ingest/router.h"
#include "metrics/metrics.h"
#include "sink/dead_letter.h"
#include "state/checkpointer.h"
#include "window/batch.h"
#include "window/shard.h"

namespace turnstiled::ingest {

// Maps the `partition` number carried by records to where they came from: a Kafka
// (topic, partition) or a file. Slots are added at assignment time, never per record.
class PartitionRegistry {
 public:
  int32_t Slot(const std::string& topic, int32_t partition);
  // REQUIRES: slot came from Slot().
  std::pair<std::string, int32_t> Lookup(int32_t slot) const;

 private:
  mutable std::mutex mu_;
  std::vector<std::pair<std::string, int32_t>> slots_;  // guarded by mu_
};

// Per-partition event-time state, owned by the source thread that has the partition.
// The high mark is robust to one outlier: a record more than max_future from it (or the
// first record of a partition) moves it only when the next record agrees (ObserveEventTime).
struct PartitionClock {
  int64_t high_ms = window::kNoTime;                // highest accepted event time
  int64_t candidate_ms = window::kNoTime;           // a jump waiting for a second record
  std::chrono::steady_clock::time_point last_data;  // for idle_timeout
  bool done = false;  // --available-now: reached the end offset seen at start
};

struct IngestContext {
  const config::Config* config = nullptr;
  // Checkpoints and restores (Kafka); null for a file source.
  state::Checkpointer* checkpointer = nullptr;
  // When a stop was requested (steady clock ns since its epoch; 0: not yet). Every wait of a
  // stopping source ends by this plus most of shutdown_timeout.
  const std::atomic<int64_t>* stop_requested_ns = nullptr;
  // Stops the run with an error a source cannot work around (safe from any thread).
  std::function<void(const base::Status&)> fail;
  std::vector<ShardChannel*> shards;
  metrics::PipelineMetrics* metrics = nullptr;  // may be null in tests
  sink::DeadLetter* dead_letter = nullptr;
  PartitionRegistry* partitions = nullptr;
  // True while some sink has been failing (and retrying) for a while: the Kafka sources pause
  // fetching rather than read what cannot be written yet. May be empty.
  std::function<bool()> sinks_stalled;
  // Set when a stop was asked for before the run began (RunOptions::cancel). May be null.
  const std::atomic<bool>* cancel = nullptr;
};

class Ingestor {
 public:
  static base::Result<std::unique_ptr<Ingestor>> Create(const IngestContext& ctx, int source);

  // `append_ms`: the message's Kafka timestamp (the ingest time), or window::kNoTime.
  void Handle(std::string_view bytes, int32_t slot, int64_t offset, PartitionClock* clock,
              int64_t append_ms = window::kNoTime) {
    decode::Record rec;
    const decode::DecodeStatus st = decoder_->Decode(bytes, &rec);
    HandleDecoded(bytes, st, rec, slot, offset, clock, append_ms);
  }

  // The rest of Handle(), for a record the caller decoded (Decoder::DecodeLines).
  void HandleDecoded(std::string_view bytes, decode::DecodeStatus st, const decode::Record& rec,
                     int32_t slot, int64_t offset, PartitionClock* clock,
                     int64_t append_ms = window::kNoTime) {
    ++consumed_;
    consumed_bytes_ += bytes.size();
    if (st != decode::DecodeStatus::kOk) {
      if (st != decode::DecodeStatus::kHeader) Reject(decode::Name(st), st, bytes, slot, offset);
      return;
    }
    if (rec.event_ms < min_event_ms_) {
      RejectTime(window::DropReason::kTooOld, bytes, slot, offset, rec.event_ms);
      return;
    }
    // SPEC §4: judged against when the record was written (its Kafka append time; for files,
    // the wall clock), which no record can move: one bad clock costs only its own record, and
    // a stream that resumes after any gap is accepted.
    const int64_t written = append_ms != window::kNoTime ? append_ms : now_ms_;
    if (rec.event_ms > written + max_future_) {
      RejectTime(window::DropReason::kFuture, bytes, slot, offset, rec.event_ms);
      return;
    }
    ObserveEventTime(clock, rec.event_ms);
    router_.Add(rec, bytes, slot, offset, append_ms);
  }

  // The wall clock (UTC ms) for records with no append time; sources set it once per batch.
  void SetNow(int64_t now_ms) { now_ms_ = now_ms; }

  // Moves the partition's high mark. A record within max_future of it moves it at once; one
  // further away (a jump, or a partition's first record) only when the next record lands
  // within max_future of it too, so a single outlier never sets the clock.
  void ObserveEventTime(PartitionClock* clock, int64_t t) const {
    if (clock->high_ms != window::kNoTime && t <= clock->high_ms + max_future_ &&
        t >= clock->high_ms - max_future_) {
      if (t > clock->high_ms) clock->high_ms = t;
      clock->candidate_ms = window::kNoTime;
      return;
    }
    if (clock->high_ms != window::kNoTime && t < clock->high_ms) return;  // old: no move
    const int64_t c = clock->candidate_ms;
    if (c != window::kNoTime && t <= c + max_future_ && t >= c - max_future_) {
      clock->high_ms = std::max(c, t);  // two records agree: the stream is there
      clock->candidate_ms = window::kNoTime;
    } else {
      clock->candidate_ms = t;
    }
  }

  Router& router() { return router_; }
  decode::Decoder& decoder() { return *decoder_; }
  // Adds the counts since the last call to the Prometheus counters.
  void PublishMetrics();

 private:
  Ingestor(const IngestContext& ctx, int source, std::unique_ptr<decode::Decoder> decoder);
  void Reject(const char* reason, decode::DecodeStatus st, std::string_view bytes, int32_t slot,
              int64_t offset);
  void RejectTime(window::DropReason reason, std::string_view bytes, int32_t slot, int64_t offset,
                  int64_t event_ms);

  const IngestContext ctx_;
  const int64_t max_future_;
  const int64_t min_event_ms_;
  int64_t now_ms_ = 0;
  std::unique_ptr<decode::Decoder> decoder_;
  Router router_;
  uint64_t consumed_ = 0;
  uint64_t consumed_bytes_ = 0;
  uint64_t decode_errors_[decode::kDecodeStatusCount] = {};
  uint64_t future_ = 0;
  uint64_t too_old_ = 0;
  uint64_t dead_letters_ = 0;
};

}  // namespace turnstiled::ingest
