// The whole per-record path allocates nothing once it is warm: decode (DecodeLines over a
// chunk), the ingestor's checks, routing into pooled batches, the queue, and the shard's
// counter rule and window aggregation.
//
// A real week is run once to warm up: its devices, stations and windows become known, its
// windows are closed (the shard keeps their tables for the next windows). Then the same week,
// shifted two weeks later (so that no window of it touches the first), runs again: the same devices
// and stations, new windows of the same shape. Every heap allocation during that second week is
// counted; the count must be 0.
//
// This binary replaces the global operator new to count calls, so it holds only this test.

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <new>
#include <string>
#include <vector>

#include "base/civil_time.h"
#include "base/count_allocations_test_util.h"
#include "base/input_file.h"
#include "config/config.h"
#include "decode/decoder.h"
#include "ingest/ingestor.h"
#include "window/shard.h"

using turnstiled::testing::g_allocations;

using namespace turnstiled;

namespace {

const char* kWeek = "turnstile_240113.txt.zst";

std::filesystem::path MtaDir() {
  const char* shared = std::getenv("TURNSTILED_SHARED_DIR");
  return std::filesystem::path(shared != nullptr ? shared : "../shared") / "data" / "mta";
}

bool InCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

// The lines of a week, with every DATE (MM/DD/YYYY, field 7) moved `days` later.
std::vector<std::string> Chunks(const std::string& path, int days) {
  auto reader = base::LineChunkReader::Open(path);
  REQUIRE(reader.ok());
  std::vector<std::string> chunks;
  std::string_view chunk;
  while ((*reader)->Next(&chunk)) {
    std::string c(chunk);
    if (days != 0) {
      size_t line = 0;
      while (line < c.size()) {
        size_t end = c.find('\n', line);
        if (end == std::string::npos) end = c.size();
        size_t field = line;
        for (int i = 0; i < 6 && field < end; ++i) {
          const size_t comma = c.find(',', field);
          field = comma == std::string::npos || comma > end ? end : comma + 1;
        }
        if (field + 10 <= end && c[field + 2] == '/' && c[field + 5] == '/') {
          const int64_t mo = std::atoi(c.substr(field, 2).c_str());
          const int64_t d = std::atoi(c.substr(field + 3, 2).c_str());
          const int64_t y = std::atoi(c.substr(field + 6, 4).c_str());
          const base::CivilDate to = base::CivilFromDays(
              base::DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) + days);
          char buf[32];
          std::snprintf(buf, sizeof buf, "%02u/%02u/%04lld", to.month, to.day,
                        static_cast<long long>(to.year));
          c.replace(field, 10, buf, 10);
        }
        line = end + 1;
      }
    }
    chunks.push_back(std::move(c));
  }
  REQUIRE((*reader)->status().ok());
  return chunks;
}

struct Output final : window::ShardOutput {
  void Emit(int, std::vector<window::WindowRow>&& rows, int64_t, int64_t) override {
    emitted += rows.size();
  }
  void Dropped(window::DropReason, const window::RecordBatch&,
               const window::RoutedRecord&) override {
    ++dropped;
  }
  size_t emitted = 0;
  size_t dropped = 0;
};

struct Lines final : decode::LineHandler {
  explicit Lines(ingest::Ingestor* ingestor) : ingestor_(ingestor) {}
  void OnLine(std::string_view line, int64_t n, decode::DecodeStatus status,
              const decode::Record& record) override {
    ingestor_->HandleDecoded(line, status, record, 0, n, &clock_);
  }
  ingest::Ingestor* const ingestor_;
  ingest::PartitionClock clock_;
};

}  // namespace

TEST_CASE("decode, route and aggregate allocate nothing per record once warm") {
  const std::filesystem::path week = MtaDir() / kWeek;
  if (!std::filesystem::exists(week)) {
    if (InCi()) FAIL(week.string() << " is missing; CI=true, so this fails instead of skipping");
    MESSAGE("skipped: " << week.string() << " is missing (set TURNSTILED_SHARED_DIR)");
    return;
  }
  const std::vector<std::string> first = Chunks(week.string(), 0);
  const std::vector<std::string> later = Chunks(week.string(), 14);

  config::Config cfg;
  cfg.format.timezone = "America/New_York";
  cfg.source.type = config::SourceType::kFile;
  cfg.dead_letter.enabled = false;
  ingest::ShardChannel channel;
  ingest::PartitionRegistry partitions;
  REQUIRE(partitions.Slot(week.string(), -1) == 0);
  ingest::IngestContext ctx;
  ctx.config = &cfg;
  ctx.shards = {&channel};
  ctx.partitions = &partitions;
  auto ingestor = ingest::Ingestor::Create(ctx, 0);
  REQUIRE(ingestor.ok());
  window::ShardOptions options;
  options.window = cfg.window;
  options.counters = cfg.format.counters;
  options.max_delta = cfg.format.max_delta;
  Output out;
  window::Shard shard(0, options, &out);
  (*ingestor)->SetNow(4102444800000);  // 2100: nothing is `future`

  auto drain = [&] {
    window::RecordBatch* b = nullptr;
    while (channel.queue.try_dequeue(b)) {
      shard.Process(*b);
      (*ingestor)->router().Release(b);
    }
  };
  auto run = [&](const std::vector<std::string>& chunks, const window::SourceProgress& progress) {
    Lines lines(ingestor->get());
    int64_t before = 0;
    for (const std::string& c : chunks) {
      // Each chunk's lines are numbered on from the last; the numbers only label drops.
      before += (*ingestor)->decoder().DecodeLines(c, &lines);
      (*ingestor)->router().Flush(progress);
      drain();
    }
    return before;
  };
  const window::SourceProgress reading{window::kNoTime, false, false};

  run(first, reading);
  const uint64_t warm_records = shard.stats().records;
  const size_t open_after_first = shard.open_windows();
  REQUIRE(warm_records > 200000);
  REQUIRE(open_after_first > 1000);
  // Close the first week's windows. The week holds readings of January 6 to 12; the shifted one
  // January 20 to 26.
  const int64_t closes_at = base::DaysFromCivil(2024, 1, 15) * 86400000;
  (*ingestor)->router().Flush(window::SourceProgress{closes_at, false, false});
  drain();
  REQUIRE(shard.open_windows() == 0);
  REQUIRE(out.emitted == open_after_first);

  const long before = g_allocations;
  run(later, reading);
  const long allocations = g_allocations - before;

  const uint64_t records = shard.stats().records - warm_records;
  CHECK(records == warm_records);
  CHECK(shard.open_windows() == open_after_first);  // the same shape, two weeks on
  MESSAGE(records << " records through decode, route and shard with " << allocations
                  << " heap allocations once warm");
  CHECK(allocations == 0);
}
