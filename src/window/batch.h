// RecordBatch: records routed from one ingest source to one shard, plus that source's progress.
//
// Batches are pooled: each ingest source owns a fixed set and gets them back from the shards
// through its free list, so steady-state routing allocates nothing (vectors and the arena keep
// their capacity across Clear()). The fixed pool is also the backpressure: a source with no
// free batch waits for the shards, and a source that waits stops fetching.
//
// Ownership moves with the pointer: the source fills a batch, the queue carries it, the shard
// reads it and returns it. Nobody touches a batch it does not hold.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "window/partition_state.h"

namespace turnstiled::window {

inline constexpr int64_t kNoTime = std::numeric_limits<int64_t>::min();
inline constexpr int64_t kEndOfTime = std::numeric_limits<int64_t>::max();

// One record on its way to a shard: 64 bytes, one cache line (the source writes it on one
// core, the shard reads it on the other). The raw bytes, kept only for a dead letter, are
// in RecordBatch::raw.
struct alignas(64) RoutedRecord {
  uint32_t station_off, station_len;  // in RecordBatch::arena
  uint32_t device_off, device_len;
  uint64_t station_hash;  // base::StringHash of the station
  int32_t partition;      // source partition, or file index for a file source
  int64_t offset;         // Kafka offset, or line number
  int64_t event_ms;
  int64_t entries;
  int64_t exits;
};
static_assert(sizeof(RoutedRecord) == 64);

// What a source knows about event time, sent after the records it covers (queues are FIFO per
// producer, so a shard sees a source's records before the progress that follows them).
struct SourceProgress {
  // Lowest high mark over the source's partitions that are not idle; kNoTime when a
  // partition has not been heard from yet, so nothing may close on this source's account.
  // When every partition is idle: the highest mark over them (kNoTime if none has one), which
  // the shards use only when every source is idle.
  int64_t frontier_ms = kNoTime;
  bool idle = false;      // every partition of the source is idle (or it has none)
  bool finished = false;  // bounded input fully read: this source will send nothing more
  // When idle: the lowest high mark over the source's partitions, idle or not (kNoTime when
  // none has one): what it holds back while another source's resumption is recent.
  int64_t held_ms = kNoTime;
};

struct RecordBatch {
  int source = 0;  // index of the ingest source that filled it
  std::vector<RoutedRecord> records;
  std::string arena;
  // Where each record's raw bytes are in the arena, by the record's index; empty unless the
  // source keeps them (a dead letter is configured).
  struct RawBytes {
    uint32_t off, len;
  };
  std::vector<RawBytes> raw;
  SourceProgress progress;
  // Newest append time (Kafka message timestamp, UTC ms) of the records in the batch; kNoTime
  // when the source has none (files). Feeds the end-to-end latency histogram.
  int64_t max_append_ms = kNoTime;
  // Set on the last batch a source sends when it is asked to drain: the shard replies by
  // returning the batch, which tells the source that everything before it was processed.
  bool barrier = false;
  // A request to the shard about partition state (checkpoint, hand-over, restore); handled
  // before the batch's progress is applied. Such a batch carries no records.
  std::shared_ptr<ShardControl> control;

  std::string_view Station(const RoutedRecord& r) const {
    return {arena.data() + r.station_off, r.station_len};
  }
  std::string_view Device(const RoutedRecord& r) const {
    return {arena.data() + r.device_off, r.device_len};
  }
  // REQUIRES: r is one of this batch's records.
  std::string_view Raw(const RoutedRecord& r) const {
    const auto i = static_cast<size_t>(&r - records.data());
    if (i >= raw.size()) return {};
    return {arena.data() + raw[i].off, raw[i].len};
  }

  void Clear() {
    records.clear();
    arena.clear();
    raw.clear();
    max_append_ms = kNoTime;
    barrier = false;
    control.reset();
  }
  uint32_t Append(std::string_view s) {
    const auto off = static_cast<uint32_t>(arena.size());
    arena.append(s);
    return off;
  }
};

}  // namespace turnstiled::window
