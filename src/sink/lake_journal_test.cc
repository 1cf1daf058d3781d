// The file sink's journal: one sync per flush, and what Open() does with what a crash left.
#include "sink/lake_journal.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "base/civil_time.h"
#include "sink/file_sink.h"
#include "sink/sink_test_util.h"

using namespace turnstiled;
using namespace turnstiled::sink;
using namespace turnstiled::sink::testing;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kHourMs = 3600 * 1000;
const int64_t kJan6 = base::DaysFromCivil(2024, 1, 6) * 86400 * 1000;

config::SinkConfig LakeConfig(const std::string& path) {
  config::SinkConfig c;
  c.name = "lake";
  c.type = config::SinkType::kFile;
  c.path = path;
  c.format = config::FileFormat::kCsv;
  c.compression = config::Compression::kZstd;
  c.partition_by = {"date"};
  return c;
}

std::string Raw(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The lake as a reader sees it: relative path -> raw bytes.
std::map<std::string, std::string> Snapshot(const std::string& root) {
  std::map<std::string, std::string> out;
  for (const fs::path& f : FilesUnder(root)) {
    out[fs::relative(f, root).string()] = Raw(f);
  }
  return out;
}

std::vector<window::WindowRow> Rows(int hours, int64_t entries, const std::string& source = "") {
  std::vector<window::WindowRow> rows;
  for (int h = 0; h < hours; ++h) {
    for (int s = 0; s < 3; ++s) {
      rows.push_back(MakeRow("STATION " + std::to_string(s), kJan6 + h * kHourMs,
                             kJan6 + (h + 1) * kHourMs, entries + h));
      rows.back().source = source;
    }
  }
  return rows;
}

// A sink whose journals are emptied only by Close() and Open(), so a test knows what they hold.
FileSink::Options Boot(const std::string& boot_id) {
  return {.boot_id = boot_id, .background_sync = false};
}

std::vector<fs::path> JournalFiles(const std::string& root) {
  std::vector<fs::path> out;
  for (const fs::path& f : FilesUnder(root, /*hidden=*/true)) {
    if (f.filename().string().starts_with(".turnstiled-journal-")) out.push_back(f);
  }
  return out;
}

// Writes two flushes as a process that is then killed: the sink is dropped without Close().
// Returns the lake as the second flush left it.
std::map<std::string, std::string> WriteTwoFlushesAndDie(const config::SinkConfig& config,
                                                         const std::string& boot_id) {
  FileSink sink(config, Boot(boot_id));
  REQUIRE(sink.Open().ok());
  REQUIRE(sink.Write(Rows(4, 10, "t-0")).ok());
  REQUIRE(sink.Flush().ok());
  const uint64_t after_one = sink.JournalBytes();
  CHECK(after_one > 0);
  // The second flush replaces one file and adds others.
  REQUIRE(sink.Write(Rows(6, 100, "t-0")).ok());
  REQUIRE(sink.Write(Rows(2, 7, "t-1")).ok());
  REQUIRE(sink.Flush().ok());
  CHECK(sink.JournalBytes() > after_one);
  return Snapshot(config.path);
}

}  // namespace

TEST_CASE("each flush is one record in the journal; Close() syncs the lake and removes it") {
  TempDir dir;
  const auto config = LakeConfig(dir.path() + "/lake");
  FileSink sink(config, Boot(CurrentBootId()));
  REQUIRE(sink.Open().ok());
  CHECK(sink.JournalBytes() == 0);
  REQUIRE(JournalFiles(config.path).size() == 2);
  REQUIRE(sink.Write(Rows(2, 1)).ok());
  REQUIRE(sink.Flush().ok());
  const uint64_t one = sink.JournalBytes();
  CHECK(one > 0);
  CHECK(fs::file_size(JournalFiles(config.path).at(0)) == one);
  REQUIRE(sink.Write(Rows(1, 5)).ok());
  REQUIRE(sink.Flush().ok());
  CHECK(sink.JournalBytes() > one);
  CHECK(FilesUnder(config.path).size() == 2);  // the journal is a dot file: readers skip it
  REQUIRE(sink.Close().ok());
  CHECK(sink.JournalBytes() == 0);
  CHECK(JournalFiles(config.path).empty());
}

TEST_CASE("after a machine stopped, Open() writes again each file that is missing, empty or old") {
  TempDir dir;
  const auto config = LakeConfig(dir.path() + "/lake");
  const auto lake = WriteTwoFlushesAndDie(config, "boot-1");
  REQUIRE(lake.size() == 8);  // 6 windows of one partition, 2 of another
  // What a power cut can leave of files written but not yet synced: one gone, one empty.
  auto it = lake.begin();
  const fs::path gone = fs::path(config.path) / it->first;
  const fs::path empty = fs::path(config.path) / (++it)->first;
  fs::remove(gone);
  { std::ofstream(empty, std::ios::trunc); }

  FileSink after(config, Boot("boot-2"));
  base::Status s = after.Open();
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  CHECK(after.recovery().records == 2);
  CHECK(after.recovery().rewritten == 2);
  CHECK(after.recovery().cut_records == 0);
  CHECK(after.JournalBytes() == 0);  // synced, then emptied
  CHECK(Snapshot(config.path) == lake);
  REQUIRE(after.Close().ok());
  CHECK(JournalFiles(config.path).empty());
}

TEST_CASE("after a process was killed, its files are as it left them and are not written again") {
  TempDir dir;
  const auto config = LakeConfig(dir.path() + "/lake");
  auto lake = WriteTwoFlushesAndDie(config, "boot-1");
  // Another instance of the group took the partition over and wrote its file since: a record of
  // this boot must not put the older content back.
  const fs::path taken = fs::path(config.path) / lake.begin()->first;
  { std::ofstream(taken, std::ios::trunc) << "newer"; }
  lake.begin()->second = "newer";

  FileSink after(config, Boot("boot-1"));
  REQUIRE(after.Open().ok());
  CHECK(after.recovery().records == 2);
  CHECK(after.recovery().rewritten == 0);
  CHECK(after.JournalBytes() == 0);
  CHECK(Snapshot(config.path) == lake);
}

TEST_CASE("a record cut short was never acknowledged: it is not read") {
  TempDir dir;
  const auto config = LakeConfig(dir.path() + "/lake");
  uint64_t first_record = 0;
  {
    FileSink sink(config, Boot("boot-1"));
    REQUIRE(sink.Open().ok());
    REQUIRE(sink.Write(Rows(3, 1, "t-0")).ok());
    REQUIRE(sink.Flush().ok());
    first_record = sink.JournalBytes();
    REQUIRE(sink.Write(Rows(3, 50, "t-0")).ok());
    REQUIRE(sink.Flush().ok());
  }
  const fs::path journal = JournalFiles(config.path).at(0);
  const uint64_t full = fs::file_size(journal);
  for (const uint64_t cut_at : {full - 1, first_record + 40, first_record + 10, first_record + 1}) {
    CAPTURE(cut_at);
    fs::resize_file(journal, cut_at);
    std::vector<JournalRecord> records;
    bool cut = false;
    auto j = LakeJournal::Open(journal.string(), &records, &cut);
    REQUIRE(j.ok());
    CHECK(records.size() == 1);
    CHECK(cut);
    CHECK((*j)->size() == first_record);
  }
  // A damaged byte inside the first record: its checksum fails, and nothing from it on is read.
  {
    std::fstream f(journal, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(first_record / 2));
    f.put('\x7f');
  }
  FileSink after(config, Boot("boot-2"));
  REQUIRE(after.Open().ok());
  CHECK(after.recovery().records == 0);
  CHECK(after.recovery().cut_records == 1);
  CHECK(after.JournalBytes() == 0);
}

TEST_CASE("records of before an emptying are not read again, even where a new record is shorter") {
  TempDir dir;
  const std::string path = dir.path() + "/journal";
  std::vector<JournalRecord> records;
  bool cut = false;
  {
    auto j = LakeJournal::Open(path, &records, &cut);
    REQUIRE(j.ok());
    JournalRecordBuilder b;
    for (int i = 0; i < 3; ++i) {
      b.Begin("boot", i);
      b.AddFile("date=2024-01-06/part-" + std::to_string(i) + ".csv", std::string(100, 'x'));
      REQUIRE((*j)->Append(b.payload(), static_cast<uint64_t>(i)).ok());
    }
    REQUIRE((*j)->Reset().ok());
    CHECK((*j)->size() == 0);
    // Exactly as long as the first old record: the old second one follows it, whole.
    b.Begin("boot", 7);
    b.AddFile("date=2024-01-06/part-7.csv", std::string(100, 'y'));
    REQUIRE((*j)->Append(b.payload(), 7).ok());
  }
  {
    auto j = LakeJournal::Open(path, &records, &cut);
    REQUIRE(j.ok());
    REQUIRE(records.size() == 1);
    CHECK(records[0].sequence == 7);
    CHECK(records[0].entries.at(0).content == std::string(100, 'y'));
    CHECK_FALSE(cut);
    // Emptied, and nothing appended since: no record at all.
    REQUIRE((*j)->Reset().ok());
  }
  auto again = LakeJournal::Open(path, &records, &cut);
  REQUIRE(again.ok());
  CHECK(records.empty());
  CHECK_FALSE(cut);
}

TEST_CASE("zeros written ahead are overwritten in place, and read as the journal's end") {
  TempDir dir;
  const std::string path = dir.path() + "/journal";
  std::vector<JournalRecord> records;
  bool cut = false;
  {
    auto j = LakeJournal::Open(path, &records, &cut);
    REQUIRE(j.ok());
    REQUIRE((*j)->Fill(1 << 20).ok());
    CHECK(fs::file_size(path) == 1 << 20);
    JournalRecordBuilder b;
    b.Begin("boot", 1);
    b.AddStale("date=2024-01-06/part-x", ".csv", true, 2);
    REQUIRE((*j)->Append(b.payload(), 1).ok());
    CHECK(fs::file_size(path) == 1 << 20);
    CHECK((*j)->allocated() == 1 << 20);
  }
  auto j = LakeJournal::Open(path, &records, &cut);
  REQUIRE(j.ok());
  REQUIRE(records.size() == 1);
  const JournalEntry& e = records[0].entries.at(0);
  CHECK(e.kind == JournalEntry::Kind::kStale);
  CHECK(e.path == "date=2024-01-06/part-x");
  CHECK(e.extension == ".csv");
  CHECK(e.unsuffixed);
  CHECK(e.first_part == 2);
  CHECK_FALSE(cut);
}

TEST_CASE("a cut second record leaves the first to replay after a machine stop") {
  TempDir dir;
  const auto config = LakeConfig(dir.path() + "/lake");
  std::map<std::string, std::string> after_first;
  {
    FileSink sink(config, Boot("boot-1"));
    REQUIRE(sink.Open().ok());
    REQUIRE(sink.Write(Rows(3, 1, "t-0")).ok());
    REQUIRE(sink.Flush().ok());
    after_first = Snapshot(config.path);
    REQUIRE(sink.Write(Rows(3, 50, "t-0")).ok());
    REQUIRE(sink.Flush().ok());
  }
  const fs::path journal = JournalFiles(config.path).at(0);
  fs::resize_file(journal, fs::file_size(journal) - 3);
  // The machine stopped: the second flush's file never reached the disk.
  fs::remove_all(fs::path(config.path) / "date=2024-01-06");
  FileSink after(config, Boot("boot-2"));
  REQUIRE(after.Open().ok());
  CHECK(after.recovery().records == 1);
  CHECK(after.recovery().rewritten == 3);
  CHECK(after.recovery().cut_records == 1);
  CHECK(Snapshot(config.path) == after_first);
}

TEST_CASE("parts a smaller rewrite removed stay removed after a replay") {
  TempDir dir;
  auto config = LakeConfig(dir.path() + "/lake");
  config.compression = config::Compression::kNone;
  config.roll_bytes = 300;
  std::map<std::string, std::string> lake;
  {
    FileSink sink(config, Boot("boot-1"));
    REQUIRE(sink.Open().ok());
    REQUIRE(sink.Write(Rows(1, 1)).ok());  // 3 rows: rolls into numbered parts
    std::vector<window::WindowRow> many;
    for (int s = 0; s < 10; ++s) {
      many.push_back(
          MakeRow(std::string("S").append(std::to_string(s)), kJan6, kJan6 + kHourMs, s));
    }
    REQUIRE(sink.Write(many).ok());
    REQUIRE(sink.Flush().ok());
    REQUIRE(FilesUnder(config.path).size() > 2);
    // The same window again, with one row: one unsuffixed file, and the parts go.
    REQUIRE(
        sink.Write(std::vector<window::WindowRow>{MakeRow("S0", kJan6, kJan6 + kHourMs, 99)}).ok());
    REQUIRE(sink.Flush().ok());
    lake = Snapshot(config.path);
    REQUIRE(lake.size() == 1);
  }
  // The machine stopped before any of it was synced.
  fs::remove_all(fs::path(config.path) / "date=2024-01-06");
  FileSink after(config, Boot("boot-2"));
  REQUIRE(after.Open().ok());
  CHECK(after.recovery().records == 2);
  CHECK(after.recovery().rewritten == 1);  // the removed parts are not written first
  CHECK(Snapshot(config.path) == lake);
}

TEST_CASE("a large flush syncs the filesystem instead, and leaves no older record to replay") {
  TempDir dir;
  const auto config = LakeConfig(dir.path() + "/lake");
  std::map<std::string, std::string> lake;
  {
    FileSink sink(config, Boot("boot-1"));
    REQUIRE(sink.Open().ok());
    REQUIRE(sink.Write(Rows(1, 1, "t-0")).ok());
    REQUIRE(sink.Flush().ok());
    CHECK(sink.JournalBytes() > 0);
    // The same window's file again, in a flush as large as a bounded input's end.
    std::vector<window::WindowRow> many;
    for (size_t i = 0; i < FileSink::kSyncDirectlyRows; ++i) {
      many.push_back(MakeRow(std::string("S").append(std::to_string(i)), kJan6, kJan6 + kHourMs,
                             static_cast<int64_t>(i)));
      many.back().source = "t-0";
    }
    REQUIRE(sink.Write(many).ok());
    REQUIRE(sink.Flush().ok());
    CHECK(sink.JournalBytes() == 0);
    lake = Snapshot(config.path);
    REQUIRE(lake.size() == 1);
  }
  FileSink after(config, Boot("boot-2"));
  REQUIRE(after.Open().ok());
  CHECK(after.recovery().records == 0);
  CHECK(Snapshot(config.path) == lake);
}

TEST_CASE("an Open() that failed during recovery can be tried again, as the writer pool does") {
  TempDir dir;
  const auto config = LakeConfig(dir.path() + "/lake");
  std::map<std::string, std::string> lake;
  {
    FileSink sink(config, Boot("boot-1"));
    REQUIRE(sink.Open().ok());
    REQUIRE(sink.Write(Rows(2, 3, "t-0")).ok());
    REQUIRE(sink.Flush().ok());
    lake = Snapshot(config.path);
  }
  // The machine stopped; the folder is gone, and a file stands where it must be made again.
  const fs::path folder = fs::path(config.path) / "date=2024-01-06";
  fs::remove_all(folder);
  { std::ofstream(folder) << "in the way"; }
  FileSink after(config, Boot("boot-2"));
  CHECK_FALSE(after.Open().ok());
  fs::remove(folder);
  base::Status s = after.Open();
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  CHECK(after.recovery().records == 1);
  CHECK(after.recovery().rewritten == 2);
  CHECK(Snapshot(config.path) == lake);
  REQUIRE(after.Close().ok());
  CHECK(after.Close().ok());  // a second Close() has nothing to do
}

TEST_CASE("one journal, one sink: a second sink of the process on the same path is refused") {
  TempDir dir;
  const auto config = LakeConfig(dir.path() + "/lake");
  FileSink first(config);
  REQUIRE(first.Open().ok());
  FileSink second(config);
  base::Status s = second.Open();
  CHECK(s.code() == base::Code::kIoError);
  CHECK(s.message().find("locked by another process") != std::string::npos);
  REQUIRE(first.Close().ok());
  FileSink third(config);
  CHECK(third.Open().ok());
}

TEST_CASE("processes share a lake, each with its own journal; a start adopts those of the gone") {
  TempDir dir;
  const auto config = LakeConfig(dir.path() + "/lake");
  auto as = [](const char* instance, const char* boot) {
    return FileSink::Options{.boot_id = boot, .background_sync = false, .instance = instance};
  };
  FileSink c(config, as("c", "boot-1"));  // alive throughout
  REQUIRE(c.Open().ok());
  std::map<std::string, std::string> lake;
  {
    FileSink a(config, as("a", "boot-1"));
    REQUIRE(a.Open().ok());
    REQUIRE(a.Write(Rows(2, 1, "t-0")).ok());
    REQUIRE(a.Flush().ok());
    REQUIRE(a.Write(Rows(1, 9, "t-0")).ok());
    REQUIRE(a.Flush().ok());
    lake = Snapshot(config.path);
    REQUIRE(lake.size() == 2);
  }  // a is gone, without Close()
  REQUIRE(c.Write(Rows(1, 5, "t-1")).ok());
  REQUIRE(c.Flush().ok());
  CHECK(JournalFiles(config.path).size() == 4);

  // The machine stopped before a's files were synced.
  fs::remove_all(fs::path(config.path) / "date=2024-01-06" / lake.begin()->first.substr(16));
  FileSink b(config, as("b", "boot-2"));
  base::Status s = b.Open();
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  CHECK(b.recovery().records == 2);  // a's; not c's, whose process lives
  CHECK(b.recovery().rewritten == 1);
  for (const auto& [rel, content] : lake) CHECK(Raw(fs::path(config.path) / rel) == content);
  const auto left = JournalFiles(config.path);
  CHECK(left.size() == 4);  // b's and c's
  for (const fs::path& j : left) CHECK(j.filename().string().find("-a.") == std::string::npos);
  CHECK(c.JournalBytes() > 0);
  REQUIRE(c.Close().ok());
  REQUIRE(b.Close().ok());
  CHECK(JournalFiles(config.path).empty());
}

TEST_CASE("in the background, a used journal is synced and emptied while flushes go to the other") {
  TempDir dir;
  const auto config = LakeConfig(dir.path() + "/lake");
  FileSink sink(config);
  REQUIRE(sink.Open().ok());
  // The first journal starts without zeroed room, so it is handed over at its first flush once
  // the syncer has made room in the second.
  // No bound on how long the syncer takes: its filesystem sync waits for whatever else the
  // machine writes, seconds under a parallel test run. The deadline only ends a hung run.
  uint64_t appended = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  for (int i = 0; std::chrono::steady_clock::now() < deadline && sink.JournalBytes() == appended;
       ++i) {
    REQUIRE(sink.Write(Rows(1, i, std::string("t-").append(std::to_string(i)))).ok());
    const uint64_t before = sink.JournalBytes();
    REQUIRE(sink.Flush().ok());
    appended += sink.JournalBytes() - before;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(sink.JournalBytes() < appended);  // some records were synced and let go
  const auto journals = JournalFiles(config.path);
  REQUIRE(journals.size() == 2);
  CHECK(std::max(fs::file_size(journals[0]), fs::file_size(journals[1])) >=
        FileSink::kJournalMinFill);
  REQUIRE(sink.Close().ok());
  CHECK(JournalFiles(config.path).empty());
  CHECK(!FilesUnder(config.path).empty());
}

TEST_CASE("a boot is told by when the machine booted, give or take a step of the clock") {
  const std::string id = CurrentBootId();
  CHECK(id.starts_with("boot-time:"));
  CHECK(SameBoot(id, CurrentBootId()));
  CHECK(SameBoot("boot-time:1000", "boot-time:1030"));
  CHECK(SameBoot("boot-time:1030", "boot-time:1000"));
  CHECK_FALSE(SameBoot("boot-time:1000", "boot-time:1031"));
  CHECK_FALSE(SameBoot("boot-time:1000", "boot-time:x"));
  CHECK(SameBoot("boot-1", "boot-1"));
  CHECK_FALSE(SameBoot("boot-1", "boot-2"));
  CHECK_FALSE(SameBoot("", ""));
}
