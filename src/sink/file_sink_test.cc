#include "sink/file_sink.h"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <span>
#include <thread>

#include "base/civil_time.h"
#include "base/input_file.h"
#include "sink/partition_path.h"
#include "sink/row_format.h"
#include "sink/sink_test_util.h"

using namespace turnstiled;
using namespace turnstiled::sink;
using namespace turnstiled::sink::testing;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kHourMs = 3600 * 1000;
const int64_t kJan6 = base::DaysFromCivil(2024, 1, 6) * 86400 * 1000;

config::SinkConfig FileConfig(const std::string& path, config::FileFormat format,
                              config::Compression compression) {
  config::SinkConfig c;
  c.name = "lake";
  c.type = config::SinkType::kFile;
  c.path = path;
  c.format = format;
  c.compression = compression;
  c.partition_by = {"station", "date"};
  return c;
}

void WriteAndFlush(const config::SinkConfig& config, const std::vector<window::WindowRow>& rows) {
  FileSink sink(config);
  REQUIRE(sink.Open().ok());
  REQUIRE(sink.Write(rows).ok());
  base::Status s = sink.Flush();
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  CHECK(sink.buffered_rows() == 0);
}

std::string Read(const fs::path& p) {
  auto text = base::ReadWholeFile(p.string());
  REQUIRE_MESSAGE(text.ok(), text.status().ToString());
  return *text;
}

// Checks that every file under root is inside it, is named for the station it holds, and that
// the station column reads back whole. Returns the stations found.
std::multiset<std::string> CheckFilesInside(const std::string& root) {
  const fs::path canonical_root = fs::weakly_canonical(root);
  std::multiset<std::string> stations;
  for (const fs::path& file : FilesUnder(root)) {
    const fs::path canonical = fs::weakly_canonical(file);
    const auto rel = canonical.lexically_relative(canonical_root);
    INFO("file: ", file.string());
    REQUIRE(!rel.empty());
    REQUIRE(*rel.begin() != "..");
    REQUIRE(std::distance(rel.begin(), rel.end()) == 3);  // station=/date=/part
    const std::string station_dir = rel.begin()->string();
    REQUIRE(station_dir.starts_with("station="));
    bool ok = false;
    auto records = ParseCsv(Read(file), &ok);
    REQUIRE(ok);
    REQUIRE(records.size() == 2);
    REQUIRE(records[1].size() == 9);
    const std::string& station = records[1][0];
    auto unescaped = UnescapePartitionValue(std::string_view(station_dir).substr(8));
    if (EscapePartitionValue(station).find('~') == std::string::npos) {
      REQUIRE_MESSAGE(unescaped.ok(), unescaped.status().ToString());
      CHECK(*unescaped == station);
    } else {
      CHECK_FALSE(unescaped.ok());
      CHECK(station_dir == "station=" + EscapePartitionValue(station));
    }
    stations.insert(station);
  }
  return stations;
}

}  // namespace

TEST_CASE("every station name, however strange, stays inside the sink path and reads back") {
  TempDir dir;
  const std::string root = dir.path() + "/lake";
  const std::vector<std::string> names = {"../../../../x",
                                          "A/B",
                                          "B'WAY",
                                          "CITY / BUS",
                                          "..",
                                          ".",
                                          "/leading",
                                          "with\nnewline",
                                          "\xC3\x89TOILE-\xC5\x92UVRE",
                                          std::string("bad\xFF\xFE utf8\xC3"),
                                          "",
                                          "59 ST",
                                          "TIMES SQ-42 ST",
                                          "100%",
                                          "quote\"comma,",
                                          std::string("nul\0byte", 8),
                                          std::string(1000, 'Z')};
  std::vector<window::WindowRow> rows;
  for (const std::string& n : names) rows.push_back(MakeRow(n, kJan6, kJan6 + 4 * kHourMs));
  WriteAndFlush(FileConfig(root, config::FileFormat::kCsv, config::Compression::kNone), rows);

  auto stations = CheckFilesInside(root);
  CHECK(stations == std::multiset<std::string>(names.begin(), names.end()));
  for (const auto& e : fs::directory_iterator(root)) {
    CHECK(e.path().filename().string().size() <= kMaxEscapedBytes + 8);
  }
  CHECK(fs::exists(root + "/station=59 ST/date=2024-01-06/"
                          "part-20240106T000000Z-20240106T040000Z.csv"));
}

TEST_CASE("every real MTA station name stays inside the sink path and reads back") {
  const char* shared = std::getenv("TURNSTILED_SHARED_DIR");
  const fs::path data = shared != nullptr ? fs::path(shared) / "data/mta" : fs::path();
  if (shared == nullptr || !fs::is_directory(data)) {
    // Under CI a run must never pass by skipping the real data.
    const char* ci = std::getenv("CI");
    const std::string v = ci != nullptr ? ci : "";
    if (v == "true" || v == "TRUE" || v == "True" || v == "1" || v == "yes") {
      FAIL(
          "no real data (set TURNSTILED_SHARED_DIR to a dir with data/mta); CI=true, so this "
          "fails instead of skipping");
    }
    MESSAGE("skipped: no real data (set TURNSTILED_SHARED_DIR to a dir with data/mta)");
    return;
  }
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(data)) {
    const std::string file = e.path().filename().string();
    if (!file.starts_with("turnstile_") || !file.ends_with(".zst")) continue;
    const std::string text = Read(e.path());
    size_t pos = text.find('\n') + 1;  // skip the header
    while (pos < text.size()) {
      size_t end = text.find('\n', pos);
      if (end == std::string::npos) end = text.size();
      std::string_view line(text.data() + pos, end - pos);
      for (int i = 0; i < 3; ++i) line.remove_prefix(line.find(',') + 1);
      names.emplace(line.substr(0, line.find(',')));
      pos = end + 1;
    }
  }
  REQUIRE(names.size() > 300);
  MESSAGE("distinct station names: ", names.size());
  TempDir dir;
  std::vector<window::WindowRow> rows;
  for (const std::string& n : names) rows.push_back(MakeRow(n, kJan6, kJan6 + 4 * kHourMs));
  WriteAndFlush(FileConfig(dir.path(), config::FileFormat::kCsv, config::Compression::kNone), rows);
  auto stations = CheckFilesInside(dir.path());
  CHECK(std::set<std::string>(stations.begin(), stations.end()) == names);
  CHECK(stations.size() == names.size());
}

TEST_CASE("csv files round-trip every column, with RFC 4180 quoting, compressed or not") {
  for (auto compression : {config::Compression::kZstd, config::Compression::kNone}) {
    TempDir dir;
    window::WindowRow a = MakeRow("ODD \"NAME\", with\r\nbreaks", kJan6, kJan6 + 4 * kHourMs, 7);
    a.final = false;
    window::WindowRow b = MakeRow(a.station, kJan6 + 4 * kHourMs, kJan6 + 8 * kHourMs, 9);
    b.first_event_ms = kJan6 + 4 * kHourMs + 1500;  // not whole seconds
    b.station = "ANOTHER";
    auto config = FileConfig(dir.path(), config::FileFormat::kCsv, compression);
    config.partition_by = {"date"};
    WriteAndFlush(config, {b, a});
    auto files = FilesUnder(dir.path());
    REQUIRE(files.size() == 2);  // a file per window
    const std::string ext = compression == config::Compression::kZstd ? ".csv.zst" : ".csv";
    CHECK(files[0].filename() == "part-20240106T000000Z-20240106T040000Z" + ext);
    CHECK(files[1].filename() == "part-20240106T040000Z-20240106T080000Z" + ext);
    bool ok = false;
    auto records = ParseCsv(Read(files[0]), &ok);
    REQUIRE(ok);
    auto second = ParseCsv(Read(files[1]), &ok);
    REQUIRE(ok);
    REQUIRE(records.size() == 2);
    REQUIRE(second.size() == 2);
    records.push_back(second[1]);
    CHECK(records[0] == std::vector<std::string>{"station", "window_start", "window_end", "entries",
                                                 "exits", "events", "final", "first_event",
                                                 "last_event"});
    CHECK(records[1] == std::vector<std::string>{a.station, "2024-01-06T00:00:00Z",
                                                 "2024-01-06T04:00:00Z", "7", "14", "3", "false",
                                                 "2024-01-06T00:00:00Z", "2024-01-06T03:59:59Z"});
    CHECK(records[2] == std::vector<std::string>{
                            b.station, "2024-01-06T04:00:00Z", "2024-01-06T08:00:00Z", "9", "18",
                            "3", "true", "2024-01-06T04:00:01.500Z", "2024-01-06T07:59:59Z"});
  }
}

TEST_CASE("jsonl files hold one valid object per row, even for a station that is not UTF-8") {
  TempDir dir;
  window::WindowRow a = MakeRow(std::string("Q\"\\\n\xFF", 5), kJan6, kJan6 + 4 * kHourMs, 7);
  WriteAndFlush(FileConfig(dir.path(), config::FileFormat::kJsonl, config::Compression::kZstd),
                {a});
  auto files = FilesUnder(dir.path());
  REQUIRE(files.size() == 1);
  CHECK(files[0].filename().string().ends_with(".jsonl.zst"));
  CHECK(Read(files[0]) ==
        "{\"station\":\"Q\\\"\\\\\\n\\u00ff\",\"window_start\":\"2024-01-06T00:00:00Z\","
        "\"window_end\":\"2024-01-06T04:00:00Z\",\"entries\":7,\"exits\":14,\"events\":3,"
        "\"final\":true,\"first_event\":\"2024-01-06T00:00:00Z\","
        "\"last_event\":\"2024-01-06T03:59:59Z\"}\n");
}

TEST_CASE("flushing the same rows twice leaves the same files with the same content") {
  TempDir dir;
  std::vector<window::WindowRow> rows;
  for (int s = 0; s < 5; ++s) {
    for (int w = 0; w < 30; ++w) {  // five days of 4-hour windows
      rows.push_back(MakeRow("ST " + std::to_string(s), kJan6 + w * 4 * kHourMs,
                             kJan6 + (w + 1) * 4 * kHourMs, s * 100 + w));
    }
  }
  auto config = FileConfig(dir.path(), config::FileFormat::kCsv, config::Compression::kZstd);
  WriteAndFlush(config, rows);
  auto first = FilesUnder(dir.path());
  std::vector<std::string> first_content;
  for (const auto& f : first) first_content.push_back(Read(f));
  CHECK(first.size() == 5 * 30);  // a file per station and window with partition_by station

  std::reverse(rows.begin(), rows.end());  // arrival order does not matter
  WriteAndFlush(config, rows);
  auto second = FilesUnder(dir.path());
  REQUIRE(second == first);
  for (size_t i = 0; i < second.size(); ++i) CHECK(Read(second[i]) == first_content[i]);
}

TEST_CASE("the last row written for a window in one flush is the one kept") {
  TempDir dir;
  window::WindowRow update = MakeRow("59 ST", kJan6, kJan6 + 4 * kHourMs, 5);
  update.final = false;
  window::WindowRow final_row = MakeRow("59 ST", kJan6, kJan6 + 4 * kHourMs, 8);
  WriteAndFlush(FileConfig(dir.path(), config::FileFormat::kCsv, config::Compression::kNone),
                {update, final_row});
  auto files = FilesUnder(dir.path());
  REQUIRE(files.size() == 1);
  bool ok = false;
  auto records = ParseCsv(Read(files[0]), &ok);
  REQUIRE(records.size() == 2);
  CHECK(records[1][3] == "8");
  CHECK(records[1][6] == "true");
}

TEST_CASE("a group larger than roll_bytes is split at row boundaries into numbered files") {
  TempDir dir;
  auto config = FileConfig(dir.path(), config::FileFormat::kCsv, config::Compression::kNone);
  config.roll_bytes = 400;
  config.partition_by = {"date"};
  std::vector<window::WindowRow> rows;
  for (int s = 0; s < 24; ++s) {
    rows.push_back(MakeRow("ST " + std::to_string(s), kJan6, kJan6 + kHourMs, s));
  }
  WriteAndFlush(config, rows);
  auto files = FilesUnder(dir.path());
  REQUIRE(files.size() > 2);
  int64_t total = 0;
  for (size_t n = 0; n < files.size(); ++n) {
    CHECK(files[n].filename().string().starts_with("part-20240106T000000Z-20240106T010000Z-"));
    const std::string text = Read(files[n]);
    CHECK(text.size() <= 400);
    bool ok = false;
    total += static_cast<int64_t>(ParseCsv(text, &ok).size()) - 1;
    CHECK(ok);
  }
  CHECK(total == 24);

  // Written again in fewer parts, the group leaves none of its old parts behind.
  config.roll_bytes = 1 << 20;
  WriteAndFlush(config, rows);
  files = FilesUnder(dir.path());
  REQUIRE(files.size() == 1);
  CHECK(files[0].filename() == "part-20240106T000000Z-20240106T010000Z.csv");
}

TEST_CASE("a file is named by its window and the input partition that owns its rows") {
  TempDir dir;
  auto config = FileConfig(dir.path(), config::FileFormat::kCsv, config::Compression::kNone);
  config.partition_by = {"date", "hour"};
  window::WindowRow a = MakeRow("59 ST", kJan6 + 4 * kHourMs, kJan6 + 8 * kHourMs, 1);
  a.source = "turnstile-stream-3";
  window::WindowRow b = MakeRow("PENN", kJan6 + 4 * kHourMs, kJan6 + 8 * kHourMs, 2);
  b.source = "turnstile-stream-0";
  window::WindowRow c = MakeRow("ZZ", kJan6 + 4 * kHourMs, kJan6 + 8 * kHourMs, 3);
  c.source = "turnstile-stream-3";
  WriteAndFlush(config, {a, b, c});
  auto files = FilesUnder(dir.path());
  REQUIRE(files.size() == 2);
  CHECK(files[0].string() == dir.path() +
                                 "/date=2024-01-06/hour=04/"
                                 "part-20240106T040000Z-20240106T080000Z-turnstile-stream-0.csv");
  CHECK(files[1].string() == dir.path() +
                                 "/date=2024-01-06/hour=04/"
                                 "part-20240106T040000Z-20240106T080000Z-turnstile-stream-3.csv");
  bool ok = false;
  CHECK(ParseCsv(Read(files[1]), &ok).size() == 3);
}

TEST_CASE("a failed flush keeps its rows, leaves no temp file, and the next flush writes them") {
  TempDir dir;
  auto config = FileConfig(dir.path(), config::FileFormat::kCsv, config::Compression::kZstd);
  FileSink sink(config);
  REQUIRE(sink.Open().ok());
  // A regular file where the station directory should go makes mkdir fail.
  { std::ofstream(dir.path() + "/station=BLOCKED") << "x"; }
  std::vector<window::WindowRow> rows = {MakeRow("OPEN", kJan6, kJan6 + kHourMs),
                                         MakeRow("BLOCKED", kJan6, kJan6 + kHourMs)};
  REQUIRE(sink.Write(rows).ok());
  base::Status s = sink.Flush();
  CHECK(s.code() == base::Code::kIoError);
  CHECK(sink.buffered_rows() == 2);
  for (const auto& f : FilesUnder(dir.path(), /*hidden=*/true)) {
    CHECK_FALSE(f.filename().string().starts_with(".part-"));
  }
  fs::remove(dir.path() + "/station=BLOCKED");
  s = sink.Flush();
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  CHECK(sink.buffered_rows() == 0);
  CHECK(FilesUnder(dir.path()).size() == 2);
  CHECK(sink.Close().ok());
}

TEST_CASE("a large flush staged on two threads writes what small flushes write, byte for byte") {
  // Stations that share their first 8 bytes, several input partitions and a shuffled arrival
  // order exercise the sort's keys; 20 windows of 300 rows pass kParallelStageRows.
  std::vector<window::WindowRow> rows;
  for (int w = 0; w < 20; ++w) {
    for (int s = 0; s < 300; ++s) {
      window::WindowRow r =
          MakeRow((s % 3 == 0 ? "34 ST-PENN STA " : "34 ST-HERALD SQ ") + std::to_string(s),
                  kJan6 + w * 4 * kHourMs, kJan6 + (w + 1) * 4 * kHourMs, w * 1000 + s);
      r.source = "turnstile-stream-" + std::to_string(s % 4);
      rows.push_back(std::move(r));
    }
  }
  REQUIRE(rows.size() >= FileSink::kParallelStageRows);
  std::mt19937 shuffle_rng(7);
  std::shuffle(rows.begin(), rows.end(), shuffle_rng);
  for (auto compression : {config::Compression::kZstd, config::Compression::kNone}) {
    TempDir large_dir;
    auto large = FileConfig(large_dir.path(), config::FileFormat::kCsv, compression);
    large.partition_by = {"date"};
    WriteAndFlush(large, rows);
    // The same rows with every flush under the threshold: one flush per window.
    TempDir per_window_dir;
    auto per_window = FileConfig(per_window_dir.path(), config::FileFormat::kCsv, compression);
    per_window.partition_by = {"date"};
    {
      FileSink sink(per_window);
      REQUIRE(sink.Open().ok());
      for (int w = 0; w < 20; ++w) {
        std::vector<window::WindowRow> of_window;
        for (const auto& r : rows) {
          if (r.window_start_ms == kJan6 + w * 4 * kHourMs) of_window.push_back(r);
        }
        REQUIRE(of_window.size() < FileSink::kParallelStageRows);
        REQUIRE(sink.Write(of_window).ok());
        REQUIRE(sink.Flush().ok());
      }
      REQUIRE(sink.Close().ok());
    }
    const auto files = FilesUnder(large_dir.path());
    REQUIRE(files.size() == 20 * 4);  // a file per window and partition
    const auto per_window_files = FilesUnder(per_window_dir.path());
    REQUIRE(per_window_files.size() == files.size());
    for (size_t i = 0; i < files.size(); ++i) {
      const auto rel = files[i].lexically_relative(large_dir.path());
      CHECK(rel == per_window_files[i].lexically_relative(per_window_dir.path()));
      CHECK(Read(files[i]) == Read(per_window_files[i]));
    }
    // Each file's rows are sorted by station, whole names compared.
    for (const auto& file : files) {
      bool ok = false;
      auto records = ParseCsv(Read(file), &ok);
      REQUIRE(ok);
      REQUIRE(records.size() == 76);  // the header and 75 stations of one partition
      for (size_t r = 2; r < records.size(); ++r) CHECK(records[r - 1][0] < records[r][0]);
    }
  }
}

// Waits until the sink's thread has made all its spares; a busy machine may take a while.
void WaitForSpares(const FileSink& sink) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  while (sink.spares_ready() < FileSink::kSpareFiles && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  REQUIRE(sink.spares_ready() == FileSink::kSpareFiles);
}

TEST_CASE("a partition folder replaced by a file fails the next flush before it publishes") {
  TempDir dir;
  auto config = FileConfig(dir.path(), config::FileFormat::kCsv, config::Compression::kNone);
  config.partition_by = {"date"};
  FileSink sink(config);
  REQUIRE(sink.Open().ok());
  WaitForSpares(sink);
  REQUIRE(sink.Write(std::vector{MakeRow("A", kJan6, kJan6 + 4 * kHourMs, 1)}).ok());
  REQUIRE(sink.Flush().ok());
  fs::remove_all(dir.path() + "/date=2024-01-06");
  { std::ofstream(dir.path() + "/date=2024-01-06") << "x"; }
  WaitForSpares(sink);
  // The day before comes first: with a spare taken for the folder that is now a file, its
  // file would be published before the rename into that "folder" failed.
  const std::vector<window::WindowRow> rows = {
      MakeRow("A", kJan6 - 24 * kHourMs, kJan6 - 20 * kHourMs, 1),
      MakeRow("A", kJan6, kJan6 + 4 * kHourMs, 2)};
  REQUIRE(sink.Write(rows).ok());
  const base::Status s = sink.Flush();
  CHECK(s.code() == base::Code::kIoError);
  CHECK(s.message().find("date=2024-01-06") != std::string::npos);
  for (const fs::path& f : FilesUnder(dir.path())) {
    CHECK_MESSAGE(f.string().find("date=2024-01-05") == std::string::npos, f);
  }
  CHECK(sink.buffered_rows() == rows.size());
}

TEST_CASE("a large flush with a failure on either thread keeps its rows and leaves no temp file") {
  // This thread stages groups from the first, the helper from the last: a folder that cannot
  // be made on the first day fails this thread, one on the last day the helper.
  for (const char* bad : {"date=2024-01-06", "date=2024-01-09"}) {
    CAPTURE(bad);
    TempDir dir;
    auto config = FileConfig(dir.path(), config::FileFormat::kCsv, config::Compression::kZstd);
    config.partition_by = {"date"};
    std::vector<window::WindowRow> rows;
    for (int d = 0; d < 4; ++d) {
      for (int s = 0; s < 2000; ++s) {
        const int64_t start = kJan6 + d * 24 * kHourMs;
        rows.push_back(MakeRow("ST " + std::to_string(s), start, start + 4 * kHourMs, s));
      }
    }
    FileSink sink(config);
    REQUIRE(sink.Open().ok());
    WaitForSpares(sink);  // a spare must not be taken for a folder that is a file
    { std::ofstream(dir.path() + "/" + bad) << "x"; }
    REQUIRE(sink.Write(rows).ok());
    base::Status s = sink.Flush();
    CHECK(s.code() == base::Code::kIoError);
    CHECK(s.message().find(bad) != std::string::npos);
    CHECK(sink.buffered_rows() == rows.size());
    for (const auto& f : FilesUnder(dir.path(), /*hidden=*/true)) {
      CHECK_FALSE(f.filename().string().starts_with(".part-"));
      CHECK_MESSAGE(!f.filename().string().ends_with(".csv.zst"), f.string());  // nothing published
    }
    fs::remove(dir.path() + "/" + bad);
    s = sink.Flush();
    REQUIRE_MESSAGE(s.ok(), s.ToString());
    CHECK(FilesUnder(dir.path()).size() == 4);
    CHECK(sink.Close().ok());
  }
}

namespace {

uint64_t Inode(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return static_cast<uint64_t>(st.st_ino);
}

std::vector<fs::path> Spares(const std::string& root) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(root)) {
    if (e.path().filename().string().starts_with(".spare-")) out.push_back(e.path());
  }
  return out;
}

}  // namespace

TEST_CASE("a flush writes its files into spares made ahead, and a closed sink leaves none") {
  TempDir dir;
  auto config = FileConfig(dir.path(), config::FileFormat::kCsv, config::Compression::kZstd);
  config.partition_by = {"date"};
  FileSink sink(config);
  REQUIRE(sink.Open().ok());
  WaitForSpares(sink);
  std::set<uint64_t> spare_inodes;
  for (const fs::path& p : Spares(dir.path())) spare_inodes.insert(Inode(p));
  REQUIRE(spare_inodes.size() == FileSink::kSpareFiles);

  // Three windows over two days: three files, in two folders that did not exist.
  std::vector<window::WindowRow> rows = {
      MakeRow("A", kJan6, kJan6 + 4 * kHourMs, 1), MakeRow("B", kJan6, kJan6 + 4 * kHourMs, 2),
      MakeRow("A", kJan6 + 20 * kHourMs, kJan6 + 24 * kHourMs, 3),
      MakeRow("A", kJan6 + 24 * kHourMs, kJan6 + 28 * kHourMs, 4)};
  REQUIRE(sink.Write(rows).ok());
  base::Status s = sink.Flush();
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  const std::vector<fs::path> files = FilesUnder(dir.path());
  REQUIRE(files.size() == 3);
  for (const fs::path& f : files) CHECK_MESSAGE(spare_inodes.count(Inode(f)) == 1, f);
  CHECK(files[2].string() ==
        dir.path() + "/date=2024-01-07/part-20240107T000000Z-20240107T040000Z.csv.zst");
  bool ok = false;
  const auto back = ParseCsv(Read(files[0]), &ok);
  CHECK(ok);
  CHECK(back.size() == 3);  // the header and the two stations

  CHECK(sink.Close().ok());
  CHECK(Spares(dir.path()).empty());
  CHECK(FilesUnder(dir.path(), /*hidden=*/true).size() == 3);  // no journal, no temp file
}

TEST_CASE("opening a sink removes the temporary files and spares of processes that are gone") {
  TempDir dir;
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  const std::string gone = std::to_string(child);
  const std::string alive = std::to_string(::getppid());  // the test runner: alive
  fs::create_directories(dir.path() + "/date=2024-01-06");
  const std::vector<std::string> left = {"/.spare-" + gone + "-3.tmp",
                                         "/date=2024-01-06/.part-" + gone + "-9.tmp"};
  const std::vector<std::string> kept = {"/.spare-" + alive + "-3.tmp",
                                         "/date=2024-01-06/.part-" + alive + "-9.tmp"};
  for (const auto& f : left) std::ofstream(dir.path() + f) << "half";
  for (const auto& f : kept) std::ofstream(dir.path() + f) << "in use";
  auto config = FileConfig(dir.path(), config::FileFormat::kCsv, config::Compression::kNone);
  FileSink::Options options;
  options.spare_files = 0;
  FileSink sink(config, options);
  REQUIRE(sink.Open().ok());
  for (const auto& f : left) CHECK_MESSAGE(!fs::exists(dir.path() + f), f);
  for (const auto& f : kept) CHECK_MESSAGE(fs::exists(dir.path() + f), f);
  CHECK(sink.spares_ready() == 0);
  CHECK(sink.Close().ok());
}
