#include "window/shard.h"

#include <algorithm>
#include <cstdlib>

namespace turnstiled::window {

namespace {
// Debian's abseil has its own string_view type; the maps look keys up through it.
absl::string_view Key(std::string_view s) { return {s.data(), s.size()}; }
}  // namespace

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
  }
  return "unknown";
}

Shard::Shard(int id, const ShardOptions& options, ShardOutput* output)
    : id_(id),
      options_(options),
      assigner_(options.window.size, options.window.EffectiveSlide(), options.window.offset),
      output_(output),
      sources_(static_cast<size_t>(std::max(1, options.num_sources))) {}

uint32_t Shard::StationId(std::string_view station) {
  auto it = station_ids_.find(Key(station));
  if (it != station_ids_.end()) return it->second;
  const auto id = static_cast<uint32_t>(station_names_.size());
  station_names_.emplace_back(station);
  station_ids_.emplace(station_names_.back(), id);
  return id;
}

Shard::Bucket* Shard::BucketFor(int64_t start) {
  if (start == cached_start_) return cached_bucket_;
  cached_start_ = start;
  cached_bucket_ = &buckets_[start];
  return cached_bucket_;
}

void Shard::Process(const RecordBatch& batch) {
  stats_.records += batch.records.size();
  if (batch.max_append_ms > max_append_ms_) max_append_ms_ = batch.max_append_ms;
  for (const RoutedRecord& r : batch.records) Add(batch, r);
  ApplyProgress(batch);
}

void Shard::Add(const RecordBatch& batch, const RoutedRecord& r) {
  int64_t entries = r.entries;
  int64_t exits = r.exits;
  if (options_.counters == config::CounterMode::kCumulative) {
    // SPEC §3: the first reading is the baseline; equal or earlier times are dropped without
    // moving it; otherwise |delta| counts unless it exceeds max_delta (a reset), and the
    // baseline moves either way.
    auto [it, inserted] = devices_.try_emplace(Key(batch.Device(r)));
    Device& d = it->second;
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
      // Unsigned subtraction cannot overflow; the result is then read back as signed.
      const int64_t de =
          static_cast<int64_t>(static_cast<uint64_t>(r.entries) - static_cast<uint64_t>(d.e0));
      const int64_t dx =
          static_cast<int64_t>(static_cast<uint64_t>(r.exits) - static_cast<uint64_t>(d.x0));
      const uint64_t ae = de < 0 ? 0 - static_cast<uint64_t>(de) : static_cast<uint64_t>(de);
      const uint64_t ax = dx < 0 ? 0 - static_cast<uint64_t>(dx) : static_cast<uint64_t>(dx);
      const auto limit = static_cast<uint64_t>(options_.max_delta);
      entries = ae <= limit ? static_cast<int64_t>(ae) : 0;
      exits = ax <= limit ? static_cast<int64_t>(ax) : 0;
      if (ae > limit || ax > limit) ++stats_.counter_resets;
    }
    d.t0 = r.event_ms;
    d.e0 = r.entries;
    d.x0 = r.exits;
  }
  // A late reading still moved its device's baseline above: its interval belongs to a
  // window that is already out, and must not leak into the next one.
  if (watermark_ != kNoTime && assigner_.LatestEnd(r.event_ms) <= watermark_) {
    ++stats_.dropped[static_cast<int>(DropReason::kLate)];
    output_->Dropped(DropReason::kLate, batch, r);
    return;
  }
  const uint32_t station = StationId(batch.Station(r));
  assigner_.ForEach(r.event_ms, [&](int64_t start) {
    if (watermark_ != kNoTime && start + assigner_.size() <= watermark_) return;  // closed
    Bucket* bucket = BucketFor(start);
    auto [it, inserted] = bucket->try_emplace(station);
    Agg& a = it->second;
    if (inserted) {
      ++open_windows_;
      a.first_ms = r.event_ms;
      a.last_ms = r.event_ms;
    } else {
      a.first_ms = std::min(a.first_ms, r.event_ms);
      a.last_ms = std::max(a.last_ms, r.event_ms);
    }
    a.entries += entries;
    a.exits += exits;
    a.events += 1;
    a.dirty = true;
  });
}

void Shard::ApplyProgress(const RecordBatch& batch) {
  sources_[static_cast<size_t>(batch.source)] = batch.progress;
  bool any_active = false;
  bool all_finished = true;
  int64_t frontier = kEndOfTime;
  int64_t idle_high = kNoTime;
  for (const SourceProgress& p : sources_) {
    if (!p.finished) all_finished = false;
    if (p.finished) continue;
    if (p.idle) {
      if (p.frontier_ms != kNoTime) idle_high = std::max(idle_high, p.frontier_ms);
      continue;
    }
    any_active = true;
    frontier = std::min(frontier, p.frontier_ms);
  }
  if (all_finished) {
    CloseAll();
    return;
  }
  // With every source idle nothing is in flight: the watermark may go to the highest mark
  // seen, so the last windows of a paused stream close after idle_timeout.
  if (!any_active) frontier = idle_high;
  if (frontier == kNoTime) return;
  const int64_t w = frontier - options_.window.allowed_lateness;
  if (watermark_ == kNoTime || w > watermark_) CloseThrough(w);
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
  row.first_event_ms = agg.first_ms;
  row.last_event_ms = agg.last_ms;
}

void Shard::CloseThrough(int64_t through) {
  watermark_ = through;
  std::vector<WindowRow> rows;
  while (!buckets_.empty()) {
    auto it = buckets_.begin();
    if (it->first + assigner_.size() > through) break;
    for (const auto& [station, agg] : it->second) AppendRow(station, it->first, agg, true, &rows);
    open_windows_ -= it->second.size();
    if (cached_start_ == it->first) {
      cached_start_ = kNoTime;
      cached_bucket_ = nullptr;
    }
    buckets_.erase(it);
  }
  stats_.windows_emitted += rows.size();
  // An empty emit still carries the watermark, so downstream knows how far this shard is.
  output_->Emit(id_, std::move(rows), watermark_, max_append_ms_);
}

void Shard::CloseAll() {
  if (watermark_ == kEndOfTime) return;
  CloseThrough(kEndOfTime);
}

void Shard::EmitUpdates() {
  std::vector<WindowRow> rows;
  for (auto& [start, bucket] : buckets_) {
    for (auto& [station, agg] : bucket) {
      if (!agg.dirty) continue;
      agg.dirty = false;
      AppendRow(station, start, agg, false, &rows);
    }
  }
  if (rows.empty()) return;
  stats_.update_rows += rows.size();
  output_->Emit(id_, std::move(rows), watermark_, max_append_ms_);
}

}  // namespace turnstiled::window
