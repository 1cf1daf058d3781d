// Every line of every real MTA week in $TURNSTILED_SHARED_DIR/data/mta, through mta-csv.
//
// The expected figures are those measured in that folder's README.md: rows, the first and
// last local time, distinct turnstiles and STATION names per week. The files are read in
// place (plain or .zst) and never copied. Without the data the tests skip with a note, or fail
// under CI (CI=true): a CI run must never pass by skipping them.

#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "base/input_file.h"
#include "decode/decode_test_util.h"
#include "decode/decoder.h"
#include "decode/mta_csv.h"

using namespace turnstiled;
using namespace turnstiled::decode;
using namespace turnstiled::decode::testing;

namespace {

struct Week {
  const char* file;
  int64_t rows;
  int64_t first_ms;  // the first DATE TIME, as UTC
  int64_t last_ms;
  size_t turnstiles;
  size_t stations;
};

// From data/mta/README.md. 230603 is in EDT (UTC-4), the 2024 weeks in EST (UTC-5).
const Week kWeeks[] = {
    {"turnstile_230603.txt.zst", 253237, Utc(2023, 5, 27, 4), Utc(2023, 6, 3, 3, 59, 16), 5043,
     379},
    {"turnstile_240106.txt.zst", 250816, Utc(2023, 12, 30, 5), Utc(2024, 1, 6, 4, 59, 32), 5026,
     378},
    {"turnstile_240113.txt.zst", 253022, Utc(2024, 1, 6, 5), Utc(2024, 1, 13, 4, 59, 52), 5026,
     378},
    {"turnstile_240120.txt.zst", 253562, Utc(2024, 1, 13, 5), Utc(2024, 1, 20, 4, 59, 32), 5015,
     378},
    {"turnstile_240127.txt.zst", 253587, Utc(2024, 1, 20, 5), Utc(2024, 1, 27, 4, 59, 32), 5024,
     378},
    {"turnstile_240203.txt.zst", 252809, Utc(2024, 1, 27, 5), Utc(2024, 2, 3, 4, 59, 32), 5034,
     378},
    {"turnstile_240210.txt.zst", 250806, Utc(2024, 2, 3, 5), Utc(2024, 2, 10, 4, 59, 54), 5020,
     378},
    {"turnstile_240217.txt.zst", 253521, Utc(2024, 2, 10, 5), Utc(2024, 2, 17, 4, 59, 54), 5012,
     378},
};

std::filesystem::path MtaDir() {
  const char* shared = std::getenv("TURNSTILED_SHARED_DIR");
  return std::filesystem::path(shared != nullptr ? shared : "../shared") / "data" / "mta";
}

bool InCi() {
  const char* ci = std::getenv("CI");
  if (ci == nullptr) return false;
  std::string v(ci);
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
  return v == "true" || v == "1" || v == "yes";
}

// The real data a test needs is absent: a failure under CI, a skip with a note elsewhere. The
// caller returns after this.
void MissingData(const std::string& what) {
  if (InCi()) {
    FAIL(what << " (set TURNSTILED_SHARED_DIR); CI=true, so this fails instead of skipping");
  }
  MESSAGE("skipped: " << what << " (set TURNSTILED_SHARED_DIR)");
}

struct Tally {
  int64_t lines = 0;
  int64_t headers = 0;
  int64_t ok = 0;
  std::map<std::string, int64_t> failures;  // reason -> count
  std::vector<std::string> examples;        // the first few failing lines
  int64_t first_line_header = -1;
  int64_t min_ms = INT64_MAX;
  int64_t max_ms = INT64_MIN;
  std::set<std::string> devices;
  std::set<std::string> stations;
};

Tally DecodeWeek(const std::string& path, Decoder* d) {
  Tally t;
  auto reader = base::LineChunkReader::Open(path);
  REQUIRE(reader.ok());
  std::string last_device;
  std::string_view chunk;
  Record r;
  auto chunked = Make(config::FormatType::kMtaCsv, "America/New_York");
  auto baseline = Make(config::FormatType::kMtaCsv, "America/New_York");
  dynamic_cast<MtaCsvDecoder&>(*baseline).UseBaselineScanForTesting();
  while ((*reader)->Next(&chunk)) {
    // The file source's path, DecodeLines() over the whole chunk, agrees line by line, with
    // the CPU's scan loop and with the baseline (SSE2) one.
    CheckDecodeLinesMatches(chunked.get(), d, chunk);
    CheckDecodeLinesMatches(baseline.get(), d, chunk);
    while (!chunk.empty()) {
      const size_t nl = chunk.find('\n');
      const std::string_view line = chunk.substr(0, nl);
      chunk.remove_prefix(nl == std::string_view::npos ? chunk.size() : nl + 1);
      ++t.lines;
      const DecodeStatus s = d->Decode(line, &r);
      if (s == DecodeStatus::kHeader) {
        ++t.headers;
        if (t.lines == 1) t.first_line_header = 1;
        continue;
      }
      if (s != DecodeStatus::kOk) {
        ++t.failures[Name(s)];
        if (t.examples.size() < 5) t.examples.emplace_back(line);
        continue;
      }
      ++t.ok;
      t.min_ms = std::min(t.min_ms, r.event_ms);
      t.max_ms = std::max(t.max_ms, r.event_ms);
      // Each turnstile's rows are contiguous, so this keeps the sets' work per turnstile.
      if (r.device != last_device) {
        last_device.assign(r.device);
        t.devices.emplace(r.device);
      }
      t.stations.emplace(r.station);
    }
  }
  REQUIRE((*reader)->status().ok());
  return t;
}

}  // namespace

TEST_CASE("every line of every real MTA week decodes: one header, then only records") {
  const std::filesystem::path dir = MtaDir();
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("turnstile_", 0) == 0) files.push_back(e.path());
  }
  if (files.empty()) {
    MissingData("no turnstile_*.txt[.zst] in " + dir.string());
    return;
  }
  std::sort(files.begin(), files.end());

  auto d = Make(config::FormatType::kMtaCsv, "America/New_York");
  int64_t total = 0;
  double seconds = 0;
  for (const auto& path : files) {
    const std::string name = path.filename().string();
    CAPTURE(name);
    const auto start = std::chrono::steady_clock::now();
    const Tally t = DecodeWeek(path.string(), d.get());
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    total += t.ok;

    // The real weeks are clean: no line fails. Should one ever fail, say which and why.
    for (const auto& [reason, count] : t.failures) {
      MESSAGE(name << ": " << count << " lines are " << reason);
    }
    for (const std::string& line : t.examples) MESSAGE("  e.g. " << line);
    CHECK(t.failures.empty());
    CHECK(t.headers == 1);
    CHECK(t.first_line_header == 1);
    CHECK(t.ok == t.lines - t.headers);

    const Week* week = nullptr;
    for (const Week& w : kWeeks) {
      if (name == w.file) week = &w;
    }
    if (week == nullptr) {
      MESSAGE(name << ": not in the README table; checked for failures only");
      continue;
    }
    CHECK(t.ok == week->rows);
    CHECK(t.min_ms == week->first_ms);
    CHECK(t.max_ms == week->last_ms);
    CHECK(t.devices.size() == week->turnstiles);
    CHECK(t.stations.size() == week->stations);
  }
  MESSAGE(files.size() << " weeks, " << total << " records decoded at "
                       << static_cast<int64_t>(static_cast<double>(total) / seconds / 1e6 * 10) /
                              10.0
                       << " M records/s (including zstd and the test's own bookkeeping)");
}

TEST_CASE("the 2023 week's header, with its 63 trailing spaces, is the file's first line") {
  const std::filesystem::path path = MtaDir() / "turnstile_230603.txt.zst";
  if (!std::filesystem::exists(path)) {
    MissingData(path.string() + " is absent");
    return;
  }
  auto reader = base::LineChunkReader::Open(path.string());
  REQUIRE(reader.ok());
  std::string_view chunk;
  REQUIRE((*reader)->Next(&chunk));
  const std::string_view header = chunk.substr(0, chunk.find('\n'));
  CHECK(header.size() == 130);
  CHECK(header.back() == ' ');
  CHECK(MtaCsvDecoder::IsHeader(header));
  auto d = Make(config::FormatType::kMtaCsv, "America/New_York");
  CHECK(Status(d.get(), header) == DecodeStatus::kHeader);
}
