#include "window/shard.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <utility>

#include "base/log.h"

namespace turnstiled::window {

namespace {
base::Prehashed Key(std::string_view s) { return {s, base::StringHash(s)}; }

// |a - b|, or UINT64_MAX when a - b does not fit in an int64 (then it is above any max_delta).
uint64_t AbsDelta(int64_t a, int64_t b) {
  int64_t d = 0;
  if (__builtin_sub_overflow(a, b, &d)) return UINT64_MAX;
  return d < 0 ? 0 - static_cast<uint64_t>(d) : static_cast<uint64_t>(d);
}
}  // namespace

int64_t Shard::SaturatingAdd(int64_t sum, int64_t v) {
  int64_t out;
  if (!__builtin_add_overflow(sum, v, &out)) return out;
  ++stats_.saturated_sums;
  if (!saturation_logged_) {
    saturation_logged_ = true;
    base::Log(base::LogLevel::kWarn, "shard",
              "a window sum would overflow 64 bits and was held at the limit; counted in "
              "turnstiled_saturated_sums_total; logged once");
  }
  return v > 0 ? INT64_MAX : INT64_MIN;
}

const char* Name(DropReason r) {
  switch (r) {
    case DropReason::kDuplicate:
      return "duplicate";
    case DropReason::kOutOfOrder:
      return "out_of_order";
    case DropReason::kLate:
      return "late";
    case DropReason::kFuture:
      return "future";
    case DropReason::kTooOld:
      return "too_old";
  }
  return "unknown";
}

Shard::Shard(int id, const ShardOptions& options, ShardOutput* output)
    : id_(id),
      options_(options),
      assigner_(options.window.size, options.window.EffectiveSlide(), options.window.offset),
      output_(output),
      sources_(static_cast<size_t>(std::max(1, options.num_sources))) {}

uint32_t Shard::StationId(base::Prehashed station) {
  auto it = station_ids_.find(station);
  if (it != station_ids_.end()) return *it;
  const auto id = static_cast<uint32_t>(station_names_.size());
  station_names_.emplace_back(station.s);
  station_hashes_.push_back(station.hash);
  station_slot_.push_back(-1);
  station_ids_.insert(id);
  return id;
}

void Shard::AddSlot(int32_t slot) {
  const auto n = static_cast<size_t>(slot) + 1;
  if (slot_closed_.size() >= n) return;
  const size_t old = slot_closed_.size();
  // A partition new to this shard has closed nothing yet: its records are judged by its own
  // clock from here on, not by how far the other partitions are.
  slot_closed_.resize(n, kNoTime);
  slot_known_.resize(n, false);
  slot_names_.resize(n);
  for (size_t s = old; s < n; ++s) {
    if (options_.source_name) slot_names_[s] = options_.source_name(static_cast<int32_t>(s));
  }
}

void Shard::NoteConflict(uint32_t station, int32_t slot) {
  ++stats_.partition_conflicts;
  if (conflict_logged_) return;
  conflict_logged_ = true;
  base::Log(base::LogLevel::kWarn, "shard",
            "a station arrives on two input partitions; its windows can be counted by two "
            "instances of the group. Key messages by station (turnstiled produce does), or run "
            "one instance. Counted in turnstiled_station_partition_conflicts_total; logged once",
            {{"station", station_names_[station]},
             {"first_partition", slot_names_[static_cast<size_t>(station_slot_[station])]},
             {"other_partition", slot_names_[static_cast<size_t>(slot)]}});
}

Shard::Bucket* Shard::BucketFor(int64_t start) {
  // The last window used, or one beside it: a device's readings come in time order, so the
  // next record's window is usually the next one (and a hopping record's windows are visited
  // from the latest down). Only a jump pays for the search. Each candidate is checked by its
  // start, so a position left stale by a close or a drop costs a search, never a wrong window.
  if (cached_ < buckets_.size()) {
    if (buckets_[cached_].start == start) return buckets_[cached_].bucket.get();
    if (cached_ + 1 < buckets_.size() && buckets_[cached_ + 1].start == start) {
      return buckets_[++cached_].bucket.get();
    }
    if (cached_ > 0 && buckets_[cached_ - 1].start == start) {
      return buckets_[--cached_].bucket.get();
    }
  }
  auto it = std::lower_bound(buckets_.begin(), buckets_.end(), start,
                             [](const OpenWindow& w, int64_t s) { return w.start < s; });
  if (it == buckets_.end() || it->start != start) {
    std::unique_ptr<Bucket> b;
    if (spare_.empty()) {
      b = std::make_unique<Bucket>();
    } else {
      b = std::move(spare_.back());
      spare_.pop_back();
    }
    it = buckets_.insert(it, OpenWindow{start, std::move(b)});
  }
  cached_ = static_cast<size_t>(it - buckets_.begin());
  return it->bucket.get();
}

void Shard::Process(const RecordBatch& batch) {
  stats_.records += batch.records.size();
  if (batch.max_append_ms > max_append_ms_) max_append_ms_ = batch.max_append_ms;
  last_device_ = nullptr;
  // The records were written on the source's core: asked for a few ahead, they arrive while
  // the ones before are counted.
  constexpr size_t kAhead = 4;
  const RoutedRecord* const records = batch.records.data();
  const size_t n = batch.records.size();
  for (size_t i = 0; i < n; ++i) {
    if (i + kAhead < n) __builtin_prefetch(records + i + kAhead);  // one cache line each
    Add(batch, records[i]);
  }
  ApplyProgress(batch);
}

void Shard::Add(const RecordBatch& batch, const RoutedRecord& r) {
  if (static_cast<size_t>(r.partition) >= slot_closed_.size()) AddSlot(r.partition);
  if (!slot_known_[static_cast<size_t>(r.partition)]) {
    slot_known_[static_cast<size_t>(r.partition)] = true;
  }
  int64_t entries = r.entries;
  int64_t exits = r.exits;
  constexpr uint32_t kNoStation = UINT32_MAX;
  uint32_t station = kNoStation;
  if (options_.counters == config::CounterMode::kCumulative) {
    // SPEC §3: the first reading is the baseline; equal or earlier times are dropped without
    // moving it; otherwise |delta| counts unless it exceeds max_delta (a reset), and the
    // baseline moves either way.
    // The same offset in the same batch is the same string: no lookup. A pointer into
    // devices_ stays valid until the next insertion, and that is always of another device.
    const bool same = last_device_ != nullptr && r.device_off == last_device_off_;
    // The station was checked against the device's for an earlier record with these strings
    // (one that got that far: a dropped duplicate returns first).
    const bool same_station = same && r.station_off == last_station_off_;
    bool inserted = false;
    if (!same) {
      const std::string_view name = batch.Device(r);
      // Hashed here, once per run of a device's records in the batch, not by the router:
      // that keeps a routed record within one cache line.
      auto it = devices_.find(base::Prehashed{name, base::StringHash(name)});
      inserted = it == devices_.end();
      if (inserted) it = devices_.emplace(std::string(name), Device{}).first;
      last_device_ = &it->second;
      last_device_off_ = r.device_off;
    }
    Device& d = *last_device_;
    if (inserted) {
      entries = 0;
      exits = 0;
    } else if (r.event_ms == d.t0) {
      ++stats_.dropped[static_cast<int>(DropReason::kDuplicate)];
      output_->Dropped(DropReason::kDuplicate, batch, r);
      return;
    } else if (r.event_ms < d.t0) {
      ++stats_.dropped[static_cast<int>(DropReason::kOutOfOrder)];
      output_->Dropped(DropReason::kOutOfOrder, batch, r);
      return;
    } else {
      // SPEC §3: the difference is exact; one that does not fit in 64 bits is a reset.
      const uint64_t ae = AbsDelta(r.entries, d.e0);
      const uint64_t ax = AbsDelta(r.exits, d.x0);
      const auto limit = static_cast<uint64_t>(options_.max_delta);
      entries = ae <= limit ? static_cast<int64_t>(ae) : 0;
      exits = ax <= limit ? static_cast<int64_t>(ax) : 0;
      if (ae > limit || ax > limit) ++stats_.counter_resets;
    }
    d.t0 = r.event_ms;
    d.e0 = r.entries;
    d.x0 = r.exits;
    // The device remembers its station: comparing the name is cheaper than looking it up.
    if (inserted || d.slot != r.partition ||
        (!same_station && !base::ShortEqual(station_names_[d.station], batch.Station(r)))) {
      d.slot = r.partition;
      d.station = StationId({batch.Station(r), r.station_hash});
    }
    last_station_off_ = r.station_off;
    station = d.station;
  }
  // A late reading still moved its device's baseline above: its interval belongs to a
  // window that is already out, and must not leak into the next one.
  const int64_t closed = slot_closed_[static_cast<size_t>(r.partition)];
  const int64_t last_start = LastStart(r.event_ms);
  if (closed != kNoTime && last_start + assigner_.size() <= closed) {
    ++stats_.dropped[static_cast<int>(DropReason::kLate)];
    output_->Dropped(DropReason::kLate, batch, r);
    return;
  }
  if (station == kNoStation) station = StationId({batch.Station(r), r.station_hash});
  if (options_.detect_conflicts) {
    int32_t& owner = station_slot_[station];
    if (owner < 0) {
      owner = r.partition;
    } else if (owner != r.partition) {
      NoteConflict(station, r.partition);
    }
  }
  assigner_.ForEachFrom(last_start, r.event_ms, [&](int64_t start) {
    if (closed != kNoTime && start + assigner_.size() <= closed) return;  // closed
    Bucket* bucket = BucketFor(start);
    auto [agg, inserted] = bucket->TryEmplace(station);
    Agg& a = *agg;
    // 0 <= event_ms - start < size <= config::kMaxWindowSize < 2^32 ms: the offset fits.
    const auto off = static_cast<uint32_t>(r.event_ms - start);
    if (inserted) {
      ++open_windows_;
      a.first_off = off;
      a.last_off = off;
      a.slot = r.partition;
    } else {
      // Agg is packed: its fields are compared by value, never bound to a reference.
      if (off < a.first_off) a.first_off = off;
      if (off > a.last_off) a.last_off = off;
    }
    a.entries = SaturatingAdd(a.entries, entries);
    a.exits = SaturatingAdd(a.exits, exits);
    a.events += 1;
    a.dirty = true;
    a.live = true;
  });
  // A device's next reading usually falls in the next window, at the same station: fetch
  // its aggregate now, while the source's next record is read.
  if (cached_ + 1 < buckets_.size()) buckets_[cached_ + 1].bucket->Prefetch(station);
}

int64_t Shard::LastStart(int64_t t) {
  if (have_last_start_) {
    // Unsigned: t - last_start_ wraps to a huge value when t is before it.
    const uint64_t since = static_cast<uint64_t>(t) - static_cast<uint64_t>(last_start_);
    const auto slide = static_cast<uint64_t>(assigner_.slide());
    if (since < slide) return last_start_;
    if (since - slide < slide) {
      last_start_ += assigner_.slide();  // <= t: no overflow
      return last_start_;
    }
  }
  last_start_ = assigner_.LastStart(t);
  have_last_start_ = true;
  return last_start_;
}

void Shard::Control(ShardControl& control) {
  switch (control.kind) {
    case ShardControl::Kind::kExport:
    case ShardControl::Kind::kExportAndDrop:
      if (control.states.size() < control.slots.size()) control.states.resize(control.slots.size());
      Export(control.slots, &control.states);
      if (control.kind == ShardControl::Kind::kExportAndDrop) {
        for (int32_t slot : control.slots) Drop(slot);
      }
      break;
    case ShardControl::Kind::kRestore:
      if (!control.slots.empty() && !control.states.empty()) {
        Drop(control.slots[0]);
        Restore(control.slots[0], control.states[0]);
      }
      break;
  }
  if (control.done) control.done();
}

void Shard::Export(const std::vector<int32_t>& slots, std::vector<PartitionState>* out) const {
  // One pass over the state for every slot asked for: by slot, where its state goes.
  std::vector<PartitionState*> dest;
  for (size_t i = 0; i < slots.size(); ++i) {
    const auto s = static_cast<size_t>(slots[i]);
    if (dest.size() <= s) dest.resize(s + 1, nullptr);
    dest[s] = &(*out)[i];
    (*out)[i].closed_through = s < slot_closed_.size() ? slot_closed_[s] : watermark_;
  }
  for (size_t i = 0; i < slots.size(); ++i) {
    (*out)[i].windows.reserve(open_windows_ / std::max<size_t>(1, slots.size()) + 16);
  }
  auto target = [&](int32_t slot) -> PartitionState* {
    const auto s = static_cast<size_t>(slot);
    return s < dest.size() ? dest[s] : nullptr;
  };
  for (const auto& [key, d] : devices_) {
    if (PartitionState* p = target(d.slot)) {
      p->devices.push_back({station_names_[d.station], key, d.t0, d.e0, d.x0});
    }
  }
  for (const OpenWindow& w : buckets_) {
    w.bucket->ForEach([&](uint32_t station, const Agg& a) {
      if (PartitionState* p = target(a.slot)) {
        p->windows.push_back({station_names_[station], w.start, a.entries, a.exits, a.events,
                              w.start + a.first_off, w.start + a.last_off});
      }
    });
  }
}

void Shard::Drop(int32_t slot) {
  for (auto it = devices_.begin(); it != devices_.end();) {
    if (it->second.slot == slot) {
      devices_.erase(it++);
    } else {
      ++it;
    }
  }
  for (auto b = buckets_.begin(); b != buckets_.end();) {
    Bucket& bucket = *b->bucket;
    open_windows_ -= bucket.EraseIf([slot](uint32_t, const Agg& a) { return a.slot == slot; });
    if (bucket.empty()) {
      spare_.push_back(std::move(b->bucket));
      b = buckets_.erase(b);
    } else {
      ++b;
    }
  }
  for (int32_t& owner : station_slot_) {
    if (owner == slot) owner = -1;
  }
  // Whoever holds the partition next brings its own closed-through mark (a restore) or
  // starts it afresh.
  if (static_cast<size_t>(slot) < slot_closed_.size()) {
    slot_closed_[static_cast<size_t>(slot)] = kNoTime;
    slot_known_[static_cast<size_t>(slot)] = false;
  }
}

void Shard::Restore(int32_t slot, const PartitionState& state) {
  AddSlot(slot);
  slot_closed_[static_cast<size_t>(slot)] = state.closed_through;
  slot_known_[static_cast<size_t>(slot)] = true;
  for (const DeviceState& ds : state.devices) {
    const base::Prehashed key = Key(ds.device);
    auto it = devices_.find(key);
    if (it == devices_.end()) it = devices_.emplace(std::string(ds.device), Device{}).first;
    Device& d = it->second;
    d.t0 = ds.t0;
    d.e0 = ds.e0;
    d.x0 = ds.x0;
    d.slot = slot;
    d.station = StationId(Key(ds.station));
  }
  for (const WindowState& ws : state.windows) {
    const uint32_t station = StationId(Key(ws.station));
    if (options_.detect_conflicts && station_slot_[station] < 0) station_slot_[station] = slot;
    auto [agg, inserted] = BucketFor(ws.start_ms)->TryEmplace(station);
    Agg& a = *agg;
    const uint32_t first = Offset(ws.start_ms, ws.first_ms);
    const uint32_t last = Offset(ws.start_ms, ws.last_ms);
    if (inserted) {
      ++open_windows_;
      a.first_off = first;
      a.last_off = last;
      a.slot = slot;
    } else {
      if (first < a.first_off) a.first_off = first;
      if (last > a.last_off) a.last_off = last;
    }
    a.entries += ws.entries;
    a.exits += ws.exits;
    a.events += ws.events;
    a.dirty = true;
    a.live = true;
  }
}

void Shard::ApplyProgress(const RecordBatch& batch) {
  SourceProgress& slot = sources_[static_cast<size_t>(batch.source)];
  const auto now = std::chrono::steady_clock::now();
  if (slot.idle && !batch.progress.idle && !batch.progress.finished) resumed_at_ = now;
  slot = batch.progress;
  const bool holding = now - resumed_at_ < std::chrono::milliseconds(options_.window.idle_timeout);
  bool any_active = false;
  bool all_finished = true;
  int64_t frontier = kEndOfTime;
  int64_t idle_high = kNoTime;
  int64_t held = kEndOfTime;
  for (const SourceProgress& p : sources_) {
    if (!p.finished) all_finished = false;
    if (p.finished) continue;
    if (p.idle) {
      if (p.frontier_ms != kNoTime) idle_high = std::max(idle_high, p.frontier_ms);
      if (holding && p.held_ms != kNoTime) held = std::min(held, p.held_ms);
      continue;
    }
    any_active = true;
    frontier = std::min(frontier, p.frontier_ms);
  }
  if (all_finished) {
    CloseAll();
    return;
  }
  // With every source idle nothing is in flight: the stream has paused. Every window up to the
  // one holding the highest event time seen closes (SPEC §4), without allowed_lateness, so a
  // paused stream's last windows are out after idle_timeout. A record that arrives later for
  // one of them is late.
  if (!any_active) {
    if (idle_high == kNoTime) return;
    const int64_t through = assigner_.LatestEnd(idle_high);
    if (through != watermark_) CloseThrough(through);
    return;
  }
  if (frontier == kNoTime) return;
  frontier = std::min(frontier, held);
  const int64_t w = frontier - options_.window.allowed_lateness;
  // The watermark may move back when a partition joins with older data; the closed-through
  // mark of every partition already here never does (CloseThrough).
  if (w != watermark_) CloseThrough(w);
}

void Shard::AppendRow(uint32_t station, int64_t start, const Agg& agg, bool final,
                      std::vector<WindowRow>* rows) const {
  WindowRow& row = rows->emplace_back();
  row.station = station_names_[station];
  row.window_start_ms = start;
  row.window_end_ms = start + assigner_.size();
  row.entries = agg.entries;
  row.exits = agg.exits;
  row.events = agg.events;
  row.final = final;
  row.first_event_ms = start + agg.first_off;
  row.last_event_ms = start + agg.last_off;
  row.source = slot_names_[static_cast<size_t>(agg.slot)];
}

void Shard::CloseThrough(int64_t through) {
  watermark_ = through;
  for (size_t s = 0; s < slot_closed_.size(); ++s) {
    int64_t& closed = slot_closed_[s];
    if (slot_known_[s] && (closed == kNoTime || through > closed)) closed = through;
  }
  std::vector<WindowRow> rows;
  size_t closing_rows = 0;
  for (const OpenWindow& w : buckets_) {
    if (w.start + assigner_.size() > through) break;
    closing_rows += w.bucket->size();
  }
  rows.reserve(closing_rows);
  size_t closed = 0;
  for (; closed < buckets_.size(); ++closed) {
    OpenWindow& w = buckets_[closed];
    if (w.start + assigner_.size() > through) break;
    w.bucket->ForEach(
        [&](uint32_t station, const Agg& agg) { AppendRow(station, w.start, agg, true, &rows); });
    open_windows_ -= w.bucket->size();
    w.bucket->Clear();
    spare_.push_back(std::move(w.bucket));
  }
  buckets_.erase(buckets_.begin(), buckets_.begin() + static_cast<std::ptrdiff_t>(closed));
  stats_.windows_emitted += rows.size();
  // An empty emit still carries the watermark, so downstream knows how far this shard is.
  output_->Emit(id_, std::move(rows), watermark_, max_append_ms_);
}

void Shard::CloseAll() {
  if (watermark_ == kEndOfTime) return;
  CloseThrough(kEndOfTime);
}

void Shard::CollectLive(bool all, std::vector<WindowRow>* rows) {
  for (OpenWindow& w : buckets_) {
    w.bucket->ForEach([&](uint32_t station, Agg& agg) {
      if (!all && !agg.live) return;
      agg.live = false;
      AppendRow(station, w.start, agg, false, rows);
    });
  }
}

void Shard::EmitUpdates() {
  // A sink may keep one file per window and partition: when any row of it changed, every row
  // of it goes out again, so the newest copy is whole.
  std::vector<WindowRow> rows;
  std::set<int32_t> changed;
  for (OpenWindow& w : buckets_) {
    changed.clear();
    w.bucket->ForEach([&](uint32_t, const Agg& agg) {
      if (agg.dirty) changed.insert(agg.slot);
    });
    if (changed.empty()) continue;
    w.bucket->ForEach([&](uint32_t station, Agg& agg) {
      if (changed.count(agg.slot) == 0) return;
      agg.dirty = false;
      AppendRow(station, w.start, agg, false, &rows);
    });
  }
  if (rows.empty()) return;
  stats_.update_rows += rows.size();
  output_->Emit(id_, std::move(rows), watermark_, max_append_ms_);
}

}  // namespace turnstiled::window
