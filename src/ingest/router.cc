#include "ingest/router.h"

#include <chrono>
#include <thread>

namespace turnstiled::ingest {

namespace {
bool SameProgress(const window::SourceProgress& a, const window::SourceProgress& b) {
  return a.frontier_ms == b.frontier_ms && a.idle == b.idle && a.finished == b.finished &&
         a.held_ms == b.held_ms;
}
}  // namespace

Router::Router(int source, std::vector<ShardChannel*> shards, size_t batches_per_shard,
               size_t batch_records, bool keep_raw, bool by_partition)
    : source_(source),
      shards_(std::move(shards)),
      batch_records_(std::max<size_t>(1, batch_records)),
      keep_raw_(keep_raw),
      by_partition_(by_partition),
      pending_(shards_.size(), nullptr),
      sent_progress_(shards_.size(), window::SourceProgress{window::kNoTime, false, false}),
      announced_(shards_.size(), false) {
  // Batches are made on demand up to the cap: a source whose shards keep up reuses a handful,
  // and only one that runs ahead of its shards grows to the cap, then waits (backpressure).
  // Room for backpressure to act before the pool runs dry: Congested() at LowMark(),
  // Relieved() at half.
  capacity_ = std::max(shards_.size() * std::max<size_t>(2, batches_per_shard), 4 * LowMark());
}

Router::~Router() = default;

window::RecordBatch* Router::Take() {
  window::RecordBatch* b = nullptr;
  if (!free_.try_dequeue(b)) {
    if (total_ < capacity_) {
      auto fresh = std::make_unique<window::RecordBatch>();
      fresh->source = source_;
      fresh->records.reserve(batch_records_);
      fresh->arena.reserve(batch_records_ * 48);
      b = fresh.get();
      pool_.push_back(std::move(fresh));
      ++total_;
      return b;
    }
    while (!free_.wait_dequeue_timed(b, std::chrono::milliseconds(100))) {
    }
  }
  b->Clear();
  return b;
}

void Router::Send(size_t shard) {
  window::RecordBatch* b = pending_[shard];
  pending_[shard] = nullptr;
  if (b == last_.batch) last_.batch = nullptr;  // the shard's now, and will come back cleared
  b->progress = sent_progress_[shard];          // records first; new progress travels with Flush()
  shards_[shard]->depth.fetch_add(1, std::memory_order_relaxed);
  shards_[shard]->queue.enqueue(b);
}

void Router::Flush(const window::SourceProgress& progress) {
  progress_ = progress;
  for (size_t s = 0; s < shards_.size(); ++s) {
    if (pending_[s] == nullptr) {
      // The first Flush() tells every shard about this source, even with nothing new.
      if (announced_[s] && SameProgress(sent_progress_[s], progress)) continue;
      pending_[s] = Take();
    }
    sent_progress_[s] = progress;
    announced_[s] = true;
    Send(s);
  }
}

void Router::SendControl(int32_t slot, std::shared_ptr<window::ShardControl> control,
                         const window::SourceProgress& progress) {
  const size_t shard = ShardOf(slot);
  if (pending_[shard] != nullptr) Send(shard);
  pending_[shard] = Take();
  pending_[shard]->control = std::move(control);
  sent_progress_[shard] = progress;
  announced_[shard] = true;
  Send(shard);
}

void Router::Quiesce(const window::SourceProgress& progress) {
  Flush(progress);
  while (in_flight() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

}  // namespace turnstiled::ingest
