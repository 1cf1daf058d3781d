// The file sink's journal: one sync per flush, and what Open() does with what a crash left.
#include "sink/lake_journal.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

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
  FileSink sink(config, boot_id);
  REQUIRE(sink.Open().ok());
  REQUIRE(sink.Write(Rows(4, 10, "t-0")).ok());
  REQUIRE(sink.Flush().ok());
  const uint64_t after_one = sink.journal_bytes();
  CHECK(after_one > 0);
  // The second flush replaces one file and adds others.
  REQUIRE(sink.Write(Rows(6, 100, "t-0")).ok());
  REQUIRE(sink.Write(Rows(2, 7, "t-1")).ok());
  REQUIRE(sink.Flush().ok());
  CHECK(sink.journal_bytes() > after_one);
  return Snapshot(config.path);
}

}  // namespace

TEST_CASE("each flush is one record in the journal; Close() syncs the lake and removes it") {
  TempDir dir;
  const auto config = LakeConfig(dir.path() + "/lake");
  FileSink sink(config);
  REQUIRE(sink.Open().ok());
  CHECK(sink.journal_bytes() == 0);
  REQUIRE(JournalFiles(config.path).size() == 1);
  REQUIRE(sink.Write(Rows(2, 1)).ok());
  REQUIRE(sink.Flush().ok());
  const uint64_t one = sink.journal_bytes();
  CHECK(one > 0);
  CHECK(fs::file_size(JournalFiles(config.path).at(0)) == one);
  REQUIRE(sink.Write(Rows(1, 5)).ok());
  REQUIRE(sink.Flush().ok());
  CHECK(sink.journal_bytes() > one);
  CHECK(FilesUnder(config.path).size() == 2);  // the journal is a dot file: readers skip it
  REQUIRE(sink.Close().ok());
  CHECK(sink.journal_bytes() == 0);
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

  FileSink after(config, "boot-2");
  base::Status s = after.Open();
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  CHECK(after.recovery().records == 2);
  CHECK(after.recovery().rewritten == 2);
  CHECK(after.recovery().ignored_bytes == 0);
  CHECK(after.journal_bytes() == 0);  // synced, then emptied
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

  FileSink after(config, "boot-1");
  REQUIRE(after.Open().ok());
  CHECK(after.recovery().records == 2);
  CHECK(after.recovery().rewritten == 0);
  CHECK(after.journal_bytes() == 0);
  CHECK(Snapshot(config.path) == lake);
}

TEST_CASE("a record cut short was never acknowledged: it is ignored and cut off") {
  TempDir dir;
  const auto config = LakeConfig(dir.path() + "/lake");
  uint64_t first_record = 0;
  {
    FileSink sink(config, "boot-1");
    REQUIRE(sink.Open().ok());
    REQUIRE(sink.Write(Rows(3, 1, "t-0")).ok());
    REQUIRE(sink.Flush().ok());
    first_record = sink.journal_bytes();
    REQUIRE(sink.Write(Rows(3, 50, "t-0")).ok());
    REQUIRE(sink.Flush().ok());
  }
  const fs::path journal = JournalFiles(config.path).at(0);
  const uint64_t full = fs::file_size(journal);
  for (const uint64_t cut : {full - 1, first_record + 10, first_record + 1}) {
    CAPTURE(cut);
    fs::resize_file(journal, cut);
    std::vector<JournalRecord> records;
    uint64_t ignored = 0;
    auto j = LakeJournal::Open(journal.string(), &records, &ignored);
    REQUIRE(j.ok());
    CHECK(records.size() == 1);
    CHECK(ignored == cut - first_record);
    CHECK((*j)->size() == first_record);
    CHECK(fs::file_size(journal) == first_record);  // cut off, so a new record follows the first
  }
  // A damaged byte inside the first record: its checksum fails, and nothing from it on is read.
  {
    std::fstream f(journal, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(first_record / 2));
    f.put('\x7f');
  }
  FileSink after(config, "boot-2");
  REQUIRE(after.Open().ok());
  CHECK(after.recovery().records == 0);
  CHECK(after.recovery().ignored_bytes == first_record);
  CHECK(after.journal_bytes() == 0);
}

TEST_CASE("a cut second record leaves the first to replay after a machine stop") {
  TempDir dir;
  const auto config = LakeConfig(dir.path() + "/lake");
  std::map<std::string, std::string> after_first;
  {
    FileSink sink(config, "boot-1");
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
  FileSink after(config, "boot-2");
  REQUIRE(after.Open().ok());
  CHECK(after.recovery().records == 1);
  CHECK(after.recovery().rewritten == 3);
  CHECK(after.recovery().ignored_bytes > 0);
  CHECK(Snapshot(config.path) == after_first);
}

TEST_CASE("parts a smaller rewrite removed stay removed after a replay") {
  TempDir dir;
  auto config = LakeConfig(dir.path() + "/lake");
  config.compression = config::Compression::kNone;
  config.roll_bytes = 300;
  std::map<std::string, std::string> lake;
  {
    FileSink sink(config, "boot-1");
    REQUIRE(sink.Open().ok());
    REQUIRE(sink.Write(Rows(1, 1)).ok());  // 3 rows: rolls into numbered parts
    std::vector<window::WindowRow> many;
    for (int s = 0; s < 10; ++s) {
      many.push_back(MakeRow("S" + std::to_string(s), kJan6, kJan6 + kHourMs, s));
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
  FileSink after(config, "boot-2");
  REQUIRE(after.Open().ok());
  CHECK(after.recovery().records == 2);
  CHECK(after.recovery().rewritten == 1);  // the removed parts are not written first
  CHECK(Snapshot(config.path) == lake);
}

TEST_CASE("a second sink on the same path is refused while the first has it open") {
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

TEST_CASE("the boot id is read from the kernel") {
  const std::string id = CurrentBootId();
  CHECK(id.size() == 36);  // a UUID
  CHECK(id == CurrentBootId());
}
