// Where a record's CPU goes, stage by stage, on one thread: the MTA decoder alone over the
// given plain-text weeks, then one shard alone over the same records (4 h tumbling windows,
// cumulative counters, everything closed at the end). The pipeline runs these stages on
// different threads with queues between them; the difference between their sum and its CPU
// per record is what the threads, the router and the sink cost (docs/BENCHMARKS.md).
//
//   turnstiled_bench_stages [--rounds N] FILE...
//
// Prints one `stages:` line with the best of N rounds of each stage.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "base/hash.h"
#include "base/input_file.h"
#include "config/config.h"
#include "decode/decoder.h"
#include "window/shard.h"

using namespace turnstiled;
using Clock = std::chrono::steady_clock;

namespace {

struct CountRows : window::ShardOutput {
  size_t rows = 0;
  void Emit(int, std::vector<window::WindowRow>&& r, int64_t, int64_t) override {
    rows += r.size();
  }
  void Dropped(window::DropReason, const window::RecordBatch&,
               const window::RoutedRecord&) override {}
};

// Counts decoded records; with `batches`, also builds shard batches the way the router does:
// 8,192 records each, a device's consecutive readings sharing their strings and hashes.
class Batcher final : public decode::LineHandler {
 public:
  Batcher(std::vector<std::unique_ptr<window::RecordBatch>>* batches, int32_t partition)
      : batches_(batches), partition_(partition) {}

  void OnLine(std::string_view, int64_t, decode::DecodeStatus status,
              const decode::Record& rec) override {
    if (status != decode::DecodeStatus::kOk) return;
    ++records_;
    if (batches_ == nullptr) return;
    if (batch_ == nullptr || batch_->records.size() >= 8192) {
      batches_->push_back(std::make_unique<window::RecordBatch>());
      batch_ = batches_->back().get();
      batch_->progress = window::SourceProgress{window::kNoTime, false, false};
      last_station_.clear();
      last_device_.clear();
    }
    window::RoutedRecord& r = batch_->records.emplace_back();
    if (rec.station != last_station_ || rec.device != last_device_ || batch_->records.size() == 1) {
      last_station_.assign(rec.station);
      last_device_.assign(rec.device);
      last_.station_off = batch_->Append(rec.station);
      last_.device_off = batch_->Append(rec.device);
      last_.station_hash = base::StringHash(rec.station);
      last_.device_hash = base::StringHash(rec.device);
    }
    r.station_off = last_.station_off;
    r.device_off = last_.device_off;
    r.station_hash = last_.station_hash;
    r.device_hash = last_.device_hash;
    r.station_len = static_cast<uint32_t>(rec.station.size());
    r.device_len = static_cast<uint32_t>(rec.device.size());
    r.partition = partition_;
    r.offset = records_;
    r.event_ms = rec.event_ms;
    r.entries = rec.entries;
    r.exits = rec.exits;
  }
  int64_t records() const { return records_; }

 private:
  std::vector<std::unique_ptr<window::RecordBatch>>* const batches_;
  const int32_t partition_;
  window::RecordBatch* batch_ = nullptr;
  std::string last_station_, last_device_;
  window::RoutedRecord last_{};
  int64_t records_ = 0;
};

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 5;
  std::vector<std::string> texts;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--rounds" && i + 1 < argc) {
      rounds = std::max(1, std::atoi(argv[++i]));
      continue;
    }
    auto text = base::ReadWholeFile(a);
    if (!text.ok()) {
      std::fprintf(stderr, "turnstiled_bench_stages: %s\n", text.status().ToString().c_str());
      return 2;
    }
    texts.push_back(std::move(text).value());
  }
  if (texts.empty()) {
    std::fprintf(stderr, "usage: turnstiled_bench_stages [--rounds N] FILE...\n");
    return 2;
  }
  config::FormatConfig format;
  format.type = config::FormatType::kMtaCsv;
  format.timezone = "America/New_York";
  auto made = decode::MakeDecoder(format);
  if (!made.ok()) return 2;
  std::unique_ptr<decode::Decoder> decoder = std::move(made).value();

  // The decoder, in 1 MiB chunks cut after a newline, as the file source hands them over.
  constexpr size_t kChunk = 1 << 20;
  double decode_s = 1e9;
  int64_t records = 0;
  for (int round = 0; round < rounds; ++round) {
    records = 0;
    const auto t0 = Clock::now();
    for (const std::string& text : texts) {
      Batcher count(nullptr, 0);
      const std::string_view all(text);
      for (size_t at = 0; at < all.size();) {
        size_t end = std::min(all.size(), at + kChunk);
        if (end < all.size()) {
          const size_t nl = all.rfind('\n', end - 1);
          if (nl != std::string_view::npos && nl >= at) end = nl + 1;
        }
        decoder->DecodeLines(all.substr(at, end - at), &count);
        at = end;
      }
      records += count.records();
    }
    decode_s = std::min(decode_s, Seconds(t0, Clock::now()));
  }

  std::vector<std::unique_ptr<window::RecordBatch>> batches;
  for (size_t i = 0; i < texts.size(); ++i) {
    Batcher batcher(&batches, static_cast<int32_t>(i));
    decoder->DecodeLines(texts[i], &batcher);
  }
  double shard_s = 1e9;
  size_t rows = 0;
  for (int round = 0; round < rounds; ++round) {
    window::ShardOptions options;  // 4 h tumbling, cumulative: the SPEC §9 case
    CountRows out;
    window::Shard shard(0, options, &out);
    const auto t0 = Clock::now();
    for (const auto& b : batches) shard.Process(*b);
    shard.CloseAll();
    shard_s = std::min(shard_s, Seconds(t0, Clock::now()));
    rows = out.rows;
  }
  const double n = static_cast<double>(records);
  std::printf(
      "stages: records=%lld rows=%zu decode_ms=%.1f decode_ns_per_record=%.1f shard_ms=%.1f "
      "shard_ns_per_record=%.1f rounds=%d\n",
      static_cast<long long>(records), rows, decode_s * 1e3, decode_s * 1e9 / n, shard_s * 1e3,
      shard_s * 1e9 / n, rounds);
  return 0;
}
