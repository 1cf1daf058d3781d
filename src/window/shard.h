// Shard: the devices and windows of the stations hashed to it, owned outright by one thread.
//
// A shard applies the counter rule of SPEC §3 to each record (cumulative registers become
// entries/exits per interval; duplicates and out-of-order readings are dropped), adds the
// result to every window the record belongs to, and closes windows when the watermark passes
// their end (SPEC §4). Closed windows leave as rows through the RowEmitter.
//
// The watermark is computed here from the SourceProgress that every ingest source sends in
// band: the lowest frontier over the sources that are neither idle nor finished, minus
// allowed_lateness. When every source has finished, every window closes.
//
// State is keyed by input partition (the record's `partition` slot): every device and every
// window aggregate belongs to the partition that fed it, so a partition's state can be
// exported for a checkpoint, dropped when the partition is handed over, and installed again
// (ShardControl). Lateness is judged per partition: each slot has its own closed-through mark,
// which only grows. The shard's watermark may move back when a partition joins with older data
// (a restore after a rebalance); the windows other partitions already closed stay closed, and
// the joining partition's restored windows stay open until its own clock passes them.
//
// Thread-compatible: all methods are called by the shard's own thread. Process() is the hot
// path: it takes no lock and allocates only when a new device, station or window first
// appears.
#pragma once

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/hash.h"
#include "config/config.h"
#include "window/assigner.h"
#include "window/batch.h"
#include "window/id_table.h"
#include "window/partition_state.h"
#include "window/row.h"

namespace turnstiled::window {

// Why a record was dropped inside a shard; also the `reason` label of the drop metric.
// kFuture and kTooOld are decided at ingest (they need the partition's clock); the rest in
// the shard.
enum class DropReason : uint8_t { kDuplicate = 0, kOutOfOrder, kLate, kFuture, kTooOld };
inline constexpr int kDropReasonCount = 5;
const char* Name(DropReason r);

// Receives what a shard drops or emits. Implementations must be safe to call from every
// shard thread at once.
class ShardOutput {
 public:
  virtual ~ShardOutput() = default;
  // `rows` are closed (or, with emit: update, refreshed) windows. `watermark_ms` is the
  // shard's watermark after this emit: every window ending at or before it is final.
  // `append_ms` is the newest ingest time (Kafka message timestamp) of any record the shard
  // has processed so far, kNoTime if none had one.
  virtual void Emit(int shard, std::vector<WindowRow>&& rows, int64_t watermark_ms,
                    int64_t append_ms) = 0;
  // A record dropped as duplicate, out_of_order or late, for the dead letter. Exception path.
  virtual void Dropped(DropReason reason, const RecordBatch& batch, const RoutedRecord& r) = 0;
};

struct ShardOptions {
  config::WindowConfig window;
  config::CounterMode counters = config::CounterMode::kCumulative;
  int64_t max_delta = 10000;
  int num_sources = 1;
  // Inputs are partitions that each own their stations (Kafka): a station seen on a second
  // partition is a keying conflict. Off for files, where every file holds every station.
  bool detect_conflicts = false;
  // The `source` of rows from a partition slot ("" for files). Called once per new slot.
  std::function<std::string(int32_t)> source_name;
};

// Plain counters, written only by the shard thread; the pipeline publishes them per batch.
struct ShardStats {
  uint64_t records = 0;  // records received
  uint64_t dropped[kDropReasonCount] = {};
  uint64_t counter_resets = 0;
  uint64_t windows_emitted = 0;      // final rows
  uint64_t update_rows = 0;          // non-final rows (emit: update)
  uint64_t partition_conflicts = 0;  // records of a station owned by another partition
  uint64_t saturated_sums = 0;       // window sums held at the 64-bit limit
};

class Shard {
 public:
  Shard(int id, const ShardOptions& options, ShardOutput* output);
  Shard(const Shard&) = delete;  // its tables point back at it
  Shard& operator=(const Shard&) = delete;

  // Aggregates the batch's records, then applies its progress and closes what is due.
  void Process(const RecordBatch& batch);
  // emit: update: sends every window changed since the last call as a non-final row.
  void EmitUpdates();
  // The live view: appends a non-final row for every open window changed since the last call
  // (every open window if `all`). Called at most once per coalesce interval, and only while
  // someone watches; Process() only sets a bit.
  void CollectLive(bool all, std::vector<WindowRow>* rows);
  // Closes and emits every open window whatever the watermark (drain, end of input).
  void CloseAll();
  // Handles a state request (partition_state.h), then calls its `done`.
  void Control(ShardControl& control);

  int64_t watermark() const { return watermark_; }
  size_t open_windows() const { return open_windows_; }
  size_t devices() const { return devices_.size(); }
  const ShardStats& stats() const { return stats_; }

 private:
  struct Device {
    int64_t t0 = kNoTime;  // last accepted reading
    int64_t e0 = 0;
    int64_t x0 = 0;
    int32_t slot = 0;      // the partition whose state holds the baseline
    uint32_t station = 0;  // station id, for a checkpoint
  };
  // One open (station, window) aggregate: most of a shard's memory. Packed to 4-byte
  // alignment, 36 bytes, so that with its table's station id an entry is 40 bytes. The first
  // and last event times are kept as offsets from the window's start: an event in a window is
  // less than its size past the start, and window.size is at most config::kMaxWindowSize.
#pragma pack(push, 4)
  struct Agg {
    int64_t entries = 0;
    int64_t exits = 0;
    int64_t events = 0;
    uint32_t first_off = 0;  // first event time - window start, ms
    uint32_t last_off = 0;   // last event time - window start, ms
    int32_t slot : 30 = 0;   // the partition whose state holds the aggregate
    bool dirty : 1 = false;  // changed since the last EmitUpdates
    bool live : 1 = false;   // changed since the last CollectLive
  };
#pragma pack(pop)
  static_assert(sizeof(Agg) == 36);
  static_assert(config::kMaxWindowSize <= int64_t{UINT32_MAX});
  // An event time's offset into the window starting at `start` (clamped to the window, for a
  // restored state that says otherwise).
  uint32_t Offset(int64_t start, int64_t t) const {
    return static_cast<uint32_t>(std::clamp<int64_t>(t - start, 0, assigner_.size() - 1));
  }
  using Bucket = IdTable<Agg>;  // station id -> window aggregate
  struct OpenWindow {
    int64_t start;
    std::unique_ptr<Bucket> bucket;
  };

  void Add(const RecordBatch& batch, const RoutedRecord& r);
  uint32_t StationId(base::Prehashed station);
  // Makes `slot` known: its closed-through mark starts at the watermark, its source name is
  // looked up once.
  void AddSlot(int32_t slot);
  // REQUIRES: out->size() >= slots.size(); out[i] receives slot[i]'s state.
  void Export(const std::vector<int32_t>& slots, std::vector<PartitionState>* out) const;
  void Drop(int32_t slot);
  void Restore(int32_t slot, const PartitionState& state);
  void NoteConflict(uint32_t station, int32_t slot);
  // sum + v, held at INT64_MAX / INT64_MIN instead of overflowing (counted, logged once).
  int64_t SaturatingAdd(int64_t sum, int64_t v);
  Bucket* BucketFor(int64_t start);
  // assigner_.LastStart(t), without a division when t is in the same window as the last call's
  // or the next one.
  int64_t LastStart(int64_t t);
  void ApplyProgress(const RecordBatch& batch);
  // Emits and forgets every window whose end is at or before `through`.
  void CloseThrough(int64_t through);
  void AppendRow(uint32_t station, int64_t start, const Agg& agg, bool final,
                 std::vector<WindowRow>* rows) const;

  // Constant after construction.
  const int id_;
  const ShardOptions options_;
  const WindowAssigner assigner_;
  ShardOutput* const output_;  // borrowed; must outlive *this

  // Owned by the shard thread.
  // Station ids by name: the set holds only ids, and looks their names and hashes up in the
  // vectors below (4 bytes an entry instead of a second copy of every name).
  struct StationIdHash {
    using is_transparent = void;
    const Shard* shard;
    size_t operator()(uint32_t id) const { return shard->station_hashes_[id]; }
    size_t operator()(const base::Prehashed& k) const { return k.hash; }
  };
  struct StationIdEq {
    using is_transparent = void;
    const Shard* shard;
    bool operator()(uint32_t a, uint32_t b) const { return a == b; }
    bool operator()(uint32_t id, const base::Prehashed& k) const {
      return base::ShortEqual(shard->station_names_[id], k.s);
    }
    bool operator()(const base::Prehashed& k, uint32_t id) const { return (*this)(id, k); }
  };
  std::vector<std::string> station_names_;  // by station id
  std::vector<uint64_t> station_hashes_;    // by station id: base::StringHash of the name
  absl::flat_hash_set<uint32_t, StationIdHash, StationIdEq> station_ids_{0, StationIdHash{this},
                                                                         StationIdEq{this}};
  std::vector<int32_t> station_slot_;  // by station id: the partition that first fed it
  // By slot: how far that partition's windows are closed (only grows, except on restore), and
  // the `source` of its rows.
  std::vector<int64_t> slot_closed_;
  std::vector<bool> slot_known_;  // the slot has state here (records or a restore)
  std::vector<std::string> slot_names_;
  bool conflict_logged_ = false;
  bool saturation_logged_ = false;
  absl::flat_hash_map<std::string, Device, base::PrehashedHash, base::PrehashedEq> devices_;
  // The last record's device, for the next record of the same batch that shares its strings
  // (the router gives a device's consecutive readings the same ones). Reset for each batch: a
  // batch comes back with other records, and only Add() changes devices_ within one.
  uint32_t last_device_off_ = UINT32_MAX;
  uint32_t last_station_off_ = UINT32_MAX;
  Device* last_device_ = nullptr;
  // The open windows by start, ascending; few at a time (a handful of window lengths past the
  // watermark), usually appended at the end. The tables stay where they are when the vector
  // moves, and closed ones wait in spare_ for the next window, so that steady streaming
  // allocates nothing per window once the tables have grown.
  std::vector<OpenWindow> buckets_;
  std::vector<std::unique_ptr<Bucket>> spare_;
  size_t cached_ = SIZE_MAX;  // position in buckets_ of the last window used (a hint)
  size_t open_windows_ = 0;
  int64_t last_start_ = 0;  // the last LastStart() result, if have_last_start_
  bool have_last_start_ = false;
  std::vector<SourceProgress> sources_;
  // When a source last went from idle to active: for idle_timeout after, the sources still
  // idle hold the watermark back at their lowest high mark, since their own records may be
  // just behind (a feed that resumes on every partition reaches each consumer a poll apart).
  std::chrono::steady_clock::time_point resumed_at_{};
  int64_t watermark_ = kNoTime;      // windows ending at or before this are closed
  int64_t max_append_ms_ = kNoTime;  // newest ingest time seen, for the latency histogram
  ShardStats stats_;
};

}  // namespace turnstiled::window
