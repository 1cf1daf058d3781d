// Where a record's CPU goes, stage by stage, on one thread: the MTA decoder alone over the
// given plain-text weeks, the decoder with the router (the file source's thread; the router's
// share is the difference), then one shard alone over the batches the router made (4 h tumbling
// windows, cumulative counters, everything closed at the end). The pipeline runs these stages
// on different threads with queues between them; the difference between their sum and its CPU
// per record is what the hand-offs, the reading and the sink cost (docs/BENCHMARKS.md).
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

#include "base/input_file.h"
#include "config/config.h"
#include "decode/decoder.h"
#include "ingest/router.h"
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

// Counts decoded records and, with a router, routes them: the file source's path.
class Lines final : public decode::LineHandler {
 public:
  Lines(ingest::Router* router, int32_t partition) : router_(router), partition_(partition) {}

  void OnLine(std::string_view line, int64_t, decode::DecodeStatus status,
              const decode::Record& rec) override {
    if (status != decode::DecodeStatus::kOk) return;
    if (router_ != nullptr) router_->Add(rec, line, partition_, records_, window::kNoTime);
    ++records_;
  }
  int64_t records() const { return records_; }

 private:
  ingest::Router* const router_;
  const int32_t partition_;
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

  // The file source's path: chunks of a read buffer's size cut after a newline, each decoded
  // and, with a router, routed; the router is flushed at the end of each file. With `recycle`, the
  // flushed batches go straight back to the router's pool, as a shard hands them back. Returns the
  // records decoded.
  ingest::ShardChannel channel;
  auto read_all = [&](ingest::Router* router, bool recycle) {
    constexpr size_t kChunk = 2 * base::LineChunkReader::kChunkBytes;
    const window::SourceProgress reading{window::kNoTime, false, false};
    int64_t records = 0;
    auto give_back = [&] {
      for (window::RecordBatch* b = nullptr; recycle && channel.queue.try_dequeue(b);) {
        router->Release(b);
      }
    };
    for (size_t i = 0; i < texts.size(); ++i) {
      Lines lines(router, static_cast<int32_t>(i));
      const std::string_view all(texts[i]);
      for (size_t at = 0; at < all.size();) {
        size_t end = std::min(all.size(), at + kChunk);
        if (end < all.size()) {
          const size_t nl = all.rfind('\n', end - 1);
          if (nl != std::string_view::npos && nl >= at) end = nl + 1;
        }
        decoder->DecodeLines(all.substr(at, end - at), &lines);
        give_back();
        at = end;
      }
      if (router != nullptr) router->Flush(reading);
      give_back();  // nothing of this router's is left in the channel
      records += lines.records();
    }
    return records;
  };

  // The decoder alone, then the same with the router, as the pipeline's default (batches of
  // 4,096 records) to one shard, its batches reused as in the pipeline. The two alternate
  // within each round, so that a slow spell of the machine falls on both; the router's share
  // is the difference of the two best times (within the noise it can come out below zero).
  const auto make_router = [&] {
    return std::make_unique<ingest::Router>(0, std::vector<ingest::ShardChannel*>{&channel},
                                            /*batches_per_shard=*/size_t{1} << 13,
                                            /*batch_records=*/4096, /*keep_raw=*/false,
                                            /*by_partition=*/false);
  };
  double decode_s = 1e9;
  double route_s = 1e9;
  int64_t records = 0;
  {
    auto router = make_router();
    read_all(router.get(), true);  // the pool grows to what the pipeline keeps
    for (int round = 0; round < rounds; ++round) {
      auto t0 = Clock::now();
      records = read_all(nullptr, false);
      decode_s = std::min(decode_s, Seconds(t0, Clock::now()));
      t0 = Clock::now();
      read_all(router.get(), true);
      route_s = std::min(route_s, Seconds(t0, Clock::now()));
    }
  }
  // Once more, keeping every batch (the pool holds them all) for the shard rounds.
  const auto router = make_router();
  read_all(router.get(), false);
  std::vector<const window::RecordBatch*> batches;
  for (window::RecordBatch* b = nullptr; channel.queue.try_dequeue(b);) batches.push_back(b);

  double shard_s = 1e9;
  size_t rows = 0;
  for (int round = 0; round < rounds; ++round) {
    window::ShardOptions options;  // 4 h tumbling, cumulative: the SPEC §9 case
    CountRows out;
    window::Shard shard(0, options, &out);
    const auto t0 = Clock::now();
    for (const window::RecordBatch* b : batches) shard.Process(*b);
    shard.CloseAll();
    shard_s = std::min(shard_s, Seconds(t0, Clock::now()));
    rows = out.rows;
  }
  const double n = static_cast<double>(records);
  std::printf(
      "stages: records=%lld rows=%zu decode_ms=%.1f decode_ns_per_record=%.1f "
      "route_ns_per_record=%.1f shard_ms=%.1f shard_ns_per_record=%.1f rounds=%d\n",
      static_cast<long long>(records), rows, decode_s * 1e3, decode_s * 1e9 / n,
      (route_s - decode_s) * 1e9 / n, shard_s * 1e3, shard_s * 1e9 / n, rounds);
  return 0;
}
