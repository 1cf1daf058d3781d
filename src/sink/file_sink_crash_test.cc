// A process killed at any moment while flushing leaves only whole files under their final names.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
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

constexpr int64_t kMinuteMs = 60 * 1000;

std::string RawBytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Decompresses one or more whole zstd frames; false when the input is cut or corrupt (which
// base::ReadWholeFile does not report for a frame cut at end of file).
bool DecompressWhole(const std::string& in, std::string* out) {
  ZSTD_DCtx* dctx = ZSTD_createDCtx();
  std::string buf(ZSTD_DStreamOutSize(), '\0');
  ZSTD_inBuffer ib{in.data(), in.size(), 0};
  size_t rc = 1;
  bool ok = !in.empty();
  while (ok && ib.pos < ib.size) {
    ZSTD_outBuffer ob{buf.data(), buf.size(), 0};
    rc = ZSTD_decompressStream(dctx, &ob, &ib);
    if (ZSTD_isError(rc)) ok = false;
    out->append(buf.data(), ob.pos);
  }
  // Flush what the decoder still holds.
  while (ok && rc != 0) {
    ZSTD_outBuffer ob{buf.data(), buf.size(), 0};
    rc = ZSTD_decompressStream(dctx, &ob, &ib);
    if (ZSTD_isError(rc) || ob.pos == 0) break;
    out->append(buf.data(), ob.pos);
  }
  ZSTD_freeDCtx(dctx);
  return ok && rc == 0;
}

// Runs in the child until it is killed: two sinks (zstd, plain) writing large flushes whose
// content changes each round, so files are both created and replaced.
[[noreturn]] void WriteForever(const std::string& root) {
  config::SinkConfig zstd;
  zstd.type = config::SinkType::kFile;
  zstd.path = root + "/zstd";
  zstd.compression = config::Compression::kZstd;
  zstd.roll_bytes = 64 * 1024;
  config::SinkConfig plain = zstd;
  plain.path = root + "/plain";
  plain.compression = config::Compression::kNone;
  FileSink a(zstd), b(plain);
  if (!a.Open().ok() || !b.Open().ok()) _exit(2);
  const int64_t jan6 = base::DaysFromCivil(2024, 1, 6) * 86400 * 1000;
  std::vector<window::WindowRow> rows;
  for (int64_t round = 0;; ++round) {
    rows.clear();
    // 4 stations x 2 days of 1-minute windows: 8 groups of about 200 KB, 3-4 files each.
    for (int s = 0; s < 4; ++s) {
      for (int w = 0; w < 2 * 1440; ++w) {
        rows.push_back(MakeRow("STATION " + std::to_string(s), jan6 + w * kMinuteMs,
                               jan6 + (w + 1) * kMinuteMs, round * 10000 + w));
      }
    }
    if (!a.Write(rows).ok() || !b.Write(rows).ok()) _exit(3);
    if (!a.Flush().ok() || !b.Flush().ok()) _exit(4);
  }
}

bool HasFinalFile(const std::string& root) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec) && !it->path().filename().string().starts_with(".")) return true;
  }
  return false;
}

// Checks every file under root; returns how many final files it saw.
int CheckOnlyWholeFiles(const std::string& root) {
  int finals = 0;
  if (!fs::exists(root)) return 0;
  for (const fs::path& file : FilesUnder(root)) {
    const std::string name = file.filename().string();
    if (name.starts_with(".")) continue;  // a temp file may be partial
    INFO("file: ", file.string());
    ++finals;
    std::string text = RawBytes(file);
    if (name.ends_with(".zst")) {
      std::string plain;
      REQUIRE(DecompressWhole(text, &plain));
      text = std::move(plain);
    }
    REQUIRE(!text.empty());
    REQUIRE(text.back() == '\n');
    bool ok = false;
    auto records = ParseCsv(text, &ok);
    REQUIRE(ok);
    REQUIRE(records.size() > 1);
    for (const auto& r : records) REQUIRE(r.size() == 9);
  }
  return finals;
}

}  // namespace

TEST_CASE("a process killed mid-flush leaves only whole files under final names") {
  TempDir dir;
  std::mt19937 rng(42);
  std::uniform_int_distribution<int> delay_ms(5, 50);
  int finals = 0;
  int max_finals = 0;
  for (int round = 0; round < 10; ++round) {
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) WriteForever(dir.path());
    // Later rounds first wait for published files, so kills also land while files are replaced.
    for (int i = 0; round >= 5 && i < 6000 && !HasFinalFile(dir.path()); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    REQUIRE(kill(child, SIGKILL) == 0);
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    REQUIRE_MESSAGE(WIFSIGNALED(status), "the writer exited by itself with ", WEXITSTATUS(status));
    // Odd rounds open the lake as after a machine restart: every file of the journal that
    // differs on disk is written again, from a journal cut at a random moment.
    for (const char* lake : {"/zstd", "/plain"}) {
      if (!fs::exists(dir.path() + lake)) continue;
      config::SinkConfig c;
      c.type = config::SinkType::kFile;
      c.path = dir.path() + lake;
      c.compression =
          std::string(lake) == "/zstd" ? config::Compression::kZstd : config::Compression::kNone;
      FileSink reopened(c, {.boot_id = round % 2 == 1 ? "another boot" : CurrentBootId()});
      base::Status s = reopened.Open();
      REQUIRE_MESSAGE(s.ok(), s.ToString());
      CHECK(reopened.JournalBytes() == 0);
      REQUIRE(reopened.Close().ok());
    }
    finals = CheckOnlyWholeFiles(dir.path() + "/zstd") + CheckOnlyWholeFiles(dir.path() + "/plain");
    max_finals = std::max(max_finals, finals);
  }
  MESSAGE("final files after the last round: ", finals);
  CHECK(max_finals > 0);  // the later rounds waited for published files
}
