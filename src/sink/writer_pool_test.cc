#include "sink/writer_pool.h"

#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "sink/file_sink.h"
#include "sink/sink_test_util.h"

namespace turnstiled::sink {
namespace {

using std::chrono::milliseconds;

config::SinkConfig FileConfig(const std::string& path) {
  config::SinkConfig c;
  c.name = "lake";
  c.type = config::SinkType::kFile;
  c.path = path;
  c.format = config::FileFormat::kCsv;
  c.compression = config::Compression::kNone;
  return c;
}

TEST_CASE("a file sink flushes at least every roll_interval, other sinks every flush_interval") {
  config::SinkConfig c = FileConfig("/unused");
  c.flush_interval = 1000;
  c.roll_interval = 60000;
  CHECK(WriterPool::FlushPeriod(c) == milliseconds(1000));
  c.flush_interval = 3600000;
  c.roll_interval = 50;
  CHECK(WriterPool::FlushPeriod(c) == milliseconds(50));
  c.type = config::SinkType::kStdout;
  CHECK(WriterPool::FlushPeriod(c) == milliseconds(3600000));
}

TEST_CASE("a file closes after roll_interval even when flush_interval is an hour away") {
  testing::TempDir dir;
  config::SinkConfig c = FileConfig(dir.path() + "/lake");
  c.flush_interval = 3600000;  // an hour: without roll_interval nothing would flush in the test
  c.batch_rows = 1000000;
  c.roll_interval = 50;
  std::vector<WriterPool::Entry> entries;
  entries.push_back({c, std::make_unique<FileSink>(c)});
  WriterPool pool(std::move(entries), nullptr);
  pool.Start();

  auto rows = std::make_shared<std::vector<window::WindowRow>>();
  // 2024-01-06T04:00:00Z to 08:00:00Z
  rows->push_back(testing::MakeRow("PENN", 1704513600000, 1704528000000));
  const uint64_t seq = pool.Submit(rows, std::chrono::steady_clock::now());
  // Waits for the acknowledgement (a flush), not for a speed: the deadline only ends a hang.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (pool.Acked() < seq && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  REQUIRE(pool.Acked() >= seq);
  const auto files = testing::FilesUnder(dir.path() + "/lake");
  REQUIRE(files.size() == 1);
  CHECK(files[0].string().find("/date=2024-01-06/part-") != std::string::npos);
  pool.Stop();
}

}  // namespace
}  // namespace turnstiled::sink
