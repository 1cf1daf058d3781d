#include "ingest/ingestor.h"

#include "window/shard.h"

namespace turnstiled::ingest {

int32_t PartitionRegistry::Slot(const std::string& topic, int32_t partition) {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].first == topic && slots_[i].second == partition) return static_cast<int32_t>(i);
  }
  slots_.emplace_back(topic, partition);
  return static_cast<int32_t>(slots_.size() - 1);
}

std::pair<std::string, int32_t> PartitionRegistry::Lookup(int32_t slot) const {
  std::lock_guard<std::mutex> lock(mu_);
  return slots_.at(static_cast<size_t>(slot));
}

base::Result<std::unique_ptr<Ingestor>> Ingestor::Create(const IngestContext& ctx, int source) {
  auto decoder = decode::MakeDecoder(ctx.config->format);
  if (!decoder.ok()) return decoder.status();
  return std::unique_ptr<Ingestor>(new Ingestor(ctx, source, std::move(decoder).value()));
}

Ingestor::Ingestor(const IngestContext& ctx, int source, std::unique_ptr<decode::Decoder> decoder)
    : ctx_(ctx),
      max_future_(ctx.config->window.max_future),
      min_event_ms_(ctx.config->window.min_event_time),
      decoder_(std::move(decoder)),
      router_(
          source, ctx.shards, static_cast<size_t>(std::max(2, ctx.config->pipeline.queue_capacity)),
          static_cast<size_t>(ctx.config->pipeline.batch_records), ctx.config->dead_letter.enabled,
          ctx.config->source.type == config::SourceType::kKafka) {}

void Ingestor::Reject(const char* reason, decode::DecodeStatus st, std::string_view bytes,
                      int32_t slot, int64_t offset) {
  ++decode_errors_[static_cast<int>(st)];
  if (ctx_.dead_letter == nullptr) return;
  const auto [topic, partition] = ctx_.partitions->Lookup(slot);
  ctx_.dead_letter->Write({reason, topic, partition, offset, INT64_MIN, bytes});
  ++dead_letters_;
}

void Ingestor::RejectTime(window::DropReason reason, std::string_view bytes, int32_t slot,
                          int64_t offset, int64_t event_ms) {
  ++(reason == window::DropReason::kFuture ? future_ : too_old_);
  if (ctx_.dead_letter == nullptr) return;
  const auto [topic, partition] = ctx_.partitions->Lookup(slot);
  ctx_.dead_letter->Write({window::Name(reason), topic, partition, offset, event_ms, bytes});
  ++dead_letters_;
}

void Ingestor::PublishMetrics() {
  metrics::PipelineMetrics* m = ctx_.metrics;
  if (m != nullptr) {
    if (consumed_ > 0) m->consumed_records->Increment(static_cast<double>(consumed_));
    if (consumed_bytes_ > 0) m->consumed_bytes->Increment(static_cast<double>(consumed_bytes_));
    for (int i = 0; i < decode::kDecodeStatusCount; ++i) {
      if (decode_errors_[i] > 0 && static_cast<size_t>(i) < m->decode_errors.size() &&
          m->decode_errors[static_cast<size_t>(i)] != nullptr) {
        m->decode_errors[static_cast<size_t>(i)]->Increment(static_cast<double>(decode_errors_[i]));
      }
    }
    if (future_ > 0) {
      m->dropped[static_cast<size_t>(window::DropReason::kFuture)]->Increment(
          static_cast<double>(future_));
    }
    if (too_old_ > 0) {
      m->dropped[static_cast<size_t>(window::DropReason::kTooOld)]->Increment(
          static_cast<double>(too_old_));
    }
    if (dead_letters_ > 0) m->dead_letters->Increment(static_cast<double>(dead_letters_));
  }
  consumed_ = consumed_bytes_ = future_ = too_old_ = dead_letters_ = 0;
  for (auto& e : decode_errors_) e = 0;
}

}  // namespace turnstiled::ingest
