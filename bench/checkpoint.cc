// Checkpoint cost at a given number of open windows (SPEC §6, §9): builds one shard holding
// --windows open (station, window) aggregates over --partitions input partitions, then times
// what a checkpoint does with them: the shard's export, the snapshot encoding (zstd), and the
// write to a state.dir (temp file, fsync, rename). Prints one line of figures.
//
//   turnstiled_bench_checkpoint [--windows N] [--partitions P] [--dir DIR]
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "state/local_store.h"
#include "state/snapshot.h"
#include "window/shard.h"

using namespace turnstiled;
using Clock = std::chrono::steady_clock;

namespace {

struct NullOutput : window::ShardOutput {
  void Emit(int, std::vector<window::WindowRow>&&, int64_t, int64_t) override {}
  void Dropped(window::DropReason, const window::RecordBatch&,
               const window::RoutedRecord&) override {}
};

double Ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

int main(int argc, char** argv) {
  int64_t windows = 1000000;
  int partitions = 6;
  std::string dir = std::filesystem::temp_directory_path() / "turnstiled-bench-checkpoint";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--windows") windows = std::atoll(argv[i + 1]);
    if (a == "--partitions") partitions = std::atoi(argv[i + 1]);
    if (a == "--dir") dir = argv[i + 1];
  }
  constexpr int64_t kHour = 3600 * 1000;
  constexpr int64_t kWindowsPerStation = 100;
  const int64_t stations = std::max<int64_t>(1, windows / kWindowsPerStation);

  window::ShardOptions options;
  options.window.size = kHour;
  options.window.allowed_lateness = kHour;
  options.detect_conflicts = true;
  options.source_name = [](int32_t slot) {
    std::string name = "turnstile-stream-";
    name += std::to_string(slot);
    return name;
  };
  NullOutput out;
  window::Shard shard(0, options, &out);

  // One device per station, one reading per hour: every reading opens a window. No progress
  // is sent, so nothing closes.
  window::RecordBatch batch;
  for (int64_t h = 0; h <= kWindowsPerStation; ++h) {
    batch.Clear();
    batch.progress = window::SourceProgress{window::kNoTime, false, false};
    for (int64_t s = 0; s < stations; ++s) {
      std::string station = "STATION ";
      station += std::to_string(s);
      std::string device = "R";
      device += std::to_string(s);
      device += ",00-00-01";
      window::RoutedRecord r{};
      r.station_off = batch.Append(station);
      r.station_len = static_cast<uint32_t>(station.size());
      r.device_off = batch.Append(device);
      r.device_len = static_cast<uint32_t>(device.size());
      r.partition = static_cast<int32_t>(s % partitions);
      r.event_ms = 1704067200000 + h * kHour + 1000;
      r.entries = 1000 + 17 * h;
      r.exits = 2000 + 11 * h;
      batch.records.push_back(r);
    }
    shard.Process(batch);
  }

  const auto t0 = Clock::now();
  window::ShardControl control;
  control.kind = window::ShardControl::Kind::kExport;
  for (int p = 0; p < partitions; ++p) control.slots.push_back(p);
  shard.Control(control);
  const auto t1 = Clock::now();
  std::vector<std::string> encoded;
  size_t bytes = 0;
  for (auto& st : control.states) {
    st.topic = "turnstile-stream";
    encoded.push_back(state::EncodeSnapshot(st));
    bytes += encoded.back().size();
  }
  const auto t2 = Clock::now();
  std::filesystem::remove_all(dir);
  state::LocalStore store(dir, "bench");
  if (!store.Open().ok()) {
    std::fprintf(stderr, "cannot write %s\n", dir.c_str());
    return 1;
  }
  for (size_t i = 0; i < encoded.size(); ++i) {
    base::Status s = store.Write("turnstile-stream", control.states[i].partition, encoded[i]);
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.ToString().c_str());
      return 1;
    }
  }
  const auto t3 = Clock::now();
  std::filesystem::remove_all(dir);

  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  std::printf(
      "checkpoint: open_windows=%zu devices=%zu partitions=%d export_ms=%.1f encode_ms=%.1f "
      "write_ms=%.1f total_ms=%.1f bytes=%zu bytes_per_window=%.1f max_rss_mb=%.0f\n",
      shard.open_windows(), shard.devices(), partitions, Ms(t0, t1), Ms(t1, t2), Ms(t2, t3),
      Ms(t0, t3), bytes, static_cast<double>(bytes) / static_cast<double>(shard.open_windows()),
      static_cast<double>(ru.ru_maxrss) / 1024.0);
  return 0;
}
