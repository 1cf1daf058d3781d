// Router: an ingest source's side of the lock-free queues to the shards.
//
// A source decodes a record and Add()s it; the router copies the strings into the batch of
// the shard that owns the record and sends the batch when it is full. Which shard owns a
// record: for Kafka, the shard of its input partition (slot % shards), so that one shard holds
// all of a partition's state and closes all of a partition's window at once (checkpoints,
// hand-over and the lake's file per window and partition rely on it); for files, hash(station).
// Flush() sends what is pending together with the source's progress, so the shards learn how far it
// has read.
//
// Batches come from a fixed per-source pool and come back through the free list once a
// shard has processed them. No allocation per record once the pool is warm, no locks: the
// queues are moodycamel's. When the pool is empty the source blocks in Add() or Flush(): that
// wait is the backpressure that stops fetching while shards or sinks are behind.
//
// Thread-compatible: one source thread owns a Router. The ShardChannels are shared.
#pragma once

#include <concurrentqueue/blockingconcurrentqueue.h>

#include <atomic>
#include <memory>
#include <string_view>
#include <vector>

#include "base/hash.h"
#include "decode/record.h"
#include "window/batch.h"

namespace turnstiled::ingest {

// The queue into one shard. Many sources enqueue; the shard thread dequeues.
struct ShardChannel {
  moodycamel::BlockingConcurrentQueue<window::RecordBatch*> queue;
  std::atomic<int64_t> depth{0};
};

class Router {
 public:
  // `batches_per_shard` bounds what this source may have in flight to each shard.
  Router(int source, std::vector<ShardChannel*> shards, size_t batches_per_shard,
         size_t batch_records, bool keep_raw, bool by_partition);
  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // `append_ms`: the record's Kafka message timestamp, or window::kNoTime.
  void Add(const decode::Record& record, std::string_view raw, int32_t partition, int64_t offset,
           int64_t append_ms) {
    // A device's readings come one after another (a weekly file lists them together, and a
    // producer keys them by station), so most records repeat the last one's device and
    // station. Those are compared with it, and share its strings in the batch and its hashes.
    const bool repeat = SameAsLast(record);
    // Hashed once here; the shard looks the station and the device up with these hashes.
    const uint64_t station_hash = repeat ? last_.station_hash : base::StringHash(record.station);
    // The high half picks the shard (multiply and shift, no division), so the shard's own
    // tables still see every low bit vary.
    size_t shard = 0;
    if (shards_.size() > 1) {
      if (!by_partition_) {
        shard = static_cast<size_t>(((station_hash >> 32) * shards_.size()) >> 32);
      } else if (partition == last_partition_) {
        shard = last_shard_;  // a poll's records come a partition at a time
      } else {
        shard = last_shard_ = ShardOf(partition);
        last_partition_ = partition;
      }
    }
    window::RecordBatch* b = pending_[shard];
    if (b == nullptr) b = pending_[shard] = Take();
    window::RoutedRecord& r = b->records.emplace_back();
    if (repeat && b == last_.batch) {
      r.station_off = last_.station_off;
      r.device_off = last_.device_off;
    } else {
      r.station_off = b->Append(record.station);
      r.device_off = b->Append(record.device);
      last_ = {b,
               r.station_off,
               static_cast<uint32_t>(record.station.size()),
               r.device_off,
               static_cast<uint32_t>(record.device.size()),
               station_hash};
    }
    r.station_len = static_cast<uint32_t>(record.station.size());
    r.device_len = static_cast<uint32_t>(record.device.size());
    r.station_hash = station_hash;
    if (keep_raw_) {
      b->raw.push_back({b->Append(raw), static_cast<uint32_t>(raw.size())});
    }
    r.partition = partition;
    r.offset = offset;
    r.event_ms = record.event_ms;
    r.entries = record.entries;
    r.exits = record.exits;
    if (append_ms > b->max_append_ms) b->max_append_ms = append_ms;
    if (b->records.size() >= batch_records_) Send(shard);
  }

  // Sends every pending batch with `progress`; shards with nothing pending get an empty batch
  // when the progress differs from what they last heard.
  void Flush(const window::SourceProgress& progress);
  // Flush(), then waits until the shards have processed every batch of this source.
  void Quiesce(const window::SourceProgress& progress);
  // Sends what is pending for the shard of `slot`, then `control` with `progress` (which
  // becomes what that shard last heard from this source).
  void SendControl(int32_t slot, std::shared_ptr<window::ShardControl> control,
                   const window::SourceProgress& progress);
  // REQUIRES: routing by partition.
  size_t ShardOf(int32_t slot) const { return static_cast<size_t>(slot) % shards_.size(); }
  // Returns a processed batch to this router's pool. Called by shard threads.
  void Release(window::RecordBatch* batch) { free_.enqueue(batch); }
  size_t in_flight() const { return total_ - static_cast<size_t>(free_.size_approx()); }
  // Backpressure marks, for a source that can pause its input instead of blocking in Add():
  // Congested() when a few more polls could empty the pool (the shards, or the sinks behind
  // them, are not keeping up); Relieved() once half the pool is free again.
  bool Congested() const { return Available() < LowMark(); }
  bool Relieved() const { return Available() >= capacity_ / 2; }
  // What one poll of the source may take at most: a batch or two per shard, and a progress.
  size_t LowMark() const { return 3 * shards_.size() + 2; }

 private:
  window::RecordBatch* Take();
  void Send(size_t shard);
  // Whether the record's station and device are those of the last record added, whose
  // strings are still in a pending batch.
  bool SameAsLast(const decode::Record& record) const {
    if (last_.batch == nullptr) return false;
    const char* arena = last_.batch->arena.data();
    return base::ShortEqual(record.device,
                            std::string_view(arena + last_.device_off, last_.device_len)) &&
           base::ShortEqual(record.station,
                            std::string_view(arena + last_.station_off, last_.station_len));
  }
  // Batches this source can still take without waiting: not yet made, or handed back.
  size_t Available() const { return capacity_ - total_ + free_.size_approx(); }

  // Constant after construction.
  const int source_;
  const std::vector<ShardChannel*> shards_;  // borrowed
  const size_t batch_records_;
  const bool keep_raw_;
  const bool by_partition_;
  size_t capacity_ = 0;  // most batches this source may have
  size_t total_ = 0;     // batches made so far; owned by the source thread

  // Owned by the source thread.
  std::vector<window::RecordBatch*> pending_;
  // What each shard last heard from this source; a batch sent before any Flush() carries the
  // "nothing known yet" progress (kNoTime), which holds the shard's watermark back.
  std::vector<window::SourceProgress> sent_progress_;
  std::vector<bool> announced_;
  window::SourceProgress progress_;
  // The last record's strings in its batch, and the station's hash.
  struct Last {
    window::RecordBatch* batch = nullptr;  // null: none yet, or that batch has been sent
    uint32_t station_off = 0;
    uint32_t station_len = 0;
    uint32_t device_off = 0;
    uint32_t device_len = 0;
    uint64_t station_hash = 0;
  };
  Last last_;
  int32_t last_partition_ = -1;  // the last record's partition and its shard (by partition)
  size_t last_shard_ = 0;
  std::vector<std::unique_ptr<window::RecordBatch>> pool_;

  // Shared with the shard threads.
  moodycamel::BlockingConcurrentQueue<window::RecordBatch*> free_;
};

}  // namespace turnstiled::ingest
