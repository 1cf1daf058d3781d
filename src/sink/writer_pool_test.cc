#include "sink/writer_pool.h"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "metrics/metrics.h"
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

// Submits one row (2024-01-06T04:00:00Z to 08:00:00Z) to a pool with one file sink, waits for
// its acknowledgement (a flush) and returns the files under `lake`. The wait asserts nothing
// about speed: its deadline only ends a hang.
std::vector<std::filesystem::path> FlushOneRow(const config::SinkConfig& c, const std::string& lake,
                                               metrics::PipelineMetrics* metrics = nullptr,
                                               double* journal_gauge = nullptr) {
  std::vector<WriterPool::Entry> entries;
  entries.push_back({c, std::make_unique<FileSink>(c)});
  WriterPool pool(std::move(entries), metrics);
  pool.Start();
  auto rows = std::make_shared<std::vector<window::WindowRow>>();
  rows->push_back(testing::MakeRow("PENN", 1704513600000, 1704528000000));
  const uint64_t seq = pool.Submit(rows, std::chrono::steady_clock::now());
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (pool.Acked() < seq && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  REQUIRE(pool.Acked() >= seq);
  auto files = testing::FilesUnder(lake);
  if (journal_gauge != nullptr) *journal_gauge = metrics->sinks[0].journal_bytes->Value();
  pool.Stop();
  return files;
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
  const auto files = FlushOneRow(c, dir.path() + "/lake");
  REQUIRE(files.size() == 1);
  CHECK(files[0].string().find("/date=2024-01-06/part-") != std::string::npos);
}

TEST_CASE("a closed window is flushed and acknowledged at once, not after flush_interval") {
  testing::TempDir dir;
  config::SinkConfig c = FileConfig(dir.path() + "/lake");
  c.flush_interval = 3600000;  // an hour: a timer-driven flush would never come in the test
  c.roll_interval = 3600000;
  c.batch_rows = 1000000;
  // No Drain(), no RequestFlush(): the writer flushes because nothing more is queued.
  CHECK(FlushOneRow(c, dir.path() + "/lake").size() == 1);
}

TEST_CASE("the file sink's journal size is reported after each flush, and 0 once it closes") {
  testing::TempDir dir;
  config::SinkConfig c = FileConfig(dir.path() + "/lake");
  metrics::PipelineMetrics metrics({}, {}, {c.name}, 1);
  double after_flush = -1;
  REQUIRE(FlushOneRow(c, dir.path() + "/lake", &metrics, &after_flush).size() == 1);
  // The record of the one file: its header, path and content at least.
  CHECK(after_flush > 32 + 40);
  // Closing synced the lake and removed the journal.
  CHECK(metrics.sinks[0].journal_bytes->Value() == 0);
}

// A sink whose Flush() fails with the given statuses in turn, then succeeds.
class ScriptedSink final : public Sink {
 public:
  explicit ScriptedSink(std::vector<base::Status> flushes) : flushes_(std::move(flushes)) {}
  base::Status Open() override { return {}; }
  base::Status Write(std::span<const window::WindowRow> rows) override {
    pending_ += rows.size();
    return {};
  }
  base::Status Flush() override {
    ++attempts;
    if (next_ < flushes_.size()) return flushes_[next_++];
    flushed += pending_;
    pending_ = 0;
    return {};
  }
  base::Status Close() override { return {}; }
  std::atomic<int> attempts{0};
  std::atomic<size_t> flushed{0};

 private:
  std::vector<base::Status> flushes_;
  size_t next_ = 0;
  size_t pending_ = 0;
};

config::SinkConfig ScriptedConfig() {
  config::SinkConfig c;
  c.name = "warehouse";
  c.type = config::SinkType::kPostgres;
  c.flush_interval = 1;
  return c;
}

std::shared_ptr<std::vector<window::WindowRow>> OneRow() {
  auto rows = std::make_shared<std::vector<window::WindowRow>>();
  rows->push_back(testing::MakeRow("PENN", 1704513600000, 1704528000000));
  return rows;
}

TEST_CASE("a retryable failure is retried until the rows are written, then acknowledged") {
  std::vector<WriterPool::Entry> entries;
  auto sink = std::make_unique<ScriptedSink>(std::vector<base::Status>{
      base::Status::Unavailable("connection refused"), base::Status::Unavailable("again")});
  ScriptedSink* raw = sink.get();
  entries.push_back({ScriptedConfig(), std::move(sink)});
  WriterPool pool(std::move(entries), nullptr);
  int failures = 0;
  pool.SetFailureHandler([&](const base::Status&) { ++failures; });
  pool.Start();
  const uint64_t seq = pool.Submit(OneRow(), std::chrono::steady_clock::now());
  CHECK(pool.Drain(std::chrono::seconds(120)));
  CHECK(pool.Acked() >= seq);
  CHECK(raw->attempts.load() == 3);
  CHECK(raw->flushed.load() == 1);
  // Everything is acknowledged: a further request asks the sink for nothing more. (Before this
  // held, a Drain() that arrived just after the writer's own idle flush made another attempt.)
  // The writer takes its queue in order, so once the next row is acknowledged the requests
  // before it have been handled: one more attempt, for that row alone.
  pool.RequestFlush();
  CHECK(pool.Drain(std::chrono::seconds(120)));
  const uint64_t next = pool.Submit(OneRow(), std::chrono::steady_clock::now());
  CHECK(pool.Drain(std::chrono::seconds(120)));
  CHECK(pool.Acked() >= next);
  CHECK(raw->attempts.load() == 4);
  CHECK(raw->flushed.load() == 2);
  CHECK(failures == 0);
  CHECK_FALSE(pool.Failed());
  pool.Stop();
}

TEST_CASE("a permanent failure stops the sink once, names it, and acknowledges nothing more") {
  std::vector<WriterPool::Entry> entries;
  auto sink = std::make_unique<ScriptedSink>(std::vector<base::Status>{
      base::Status::InvalidArgument("column \"entries\" has type text, expected bigint")});
  ScriptedSink* raw = sink.get();
  entries.push_back({ScriptedConfig(), std::move(sink)});
  WriterPool pool(std::move(entries), nullptr, /*queue_capacity=*/2);
  std::vector<std::string> failures;
  std::mutex mu;
  pool.SetFailureHandler([&](const base::Status& s) {
    std::lock_guard<std::mutex> lock(mu);
    failures.push_back(s.ToString());
  });
  pool.Start();
  pool.Submit(OneRow(), std::chrono::steady_clock::now());
  CHECK_FALSE(pool.Drain(std::chrono::seconds(120)));
  CHECK(pool.Failed());
  CHECK(pool.Acked() == 0);
  // Submit never blocks on a failed sink, however much comes: the job is stopping.
  for (int i = 0; i < 10; ++i) pool.Submit(OneRow(), std::chrono::steady_clock::now());
  CHECK(pool.Acked() == 0);
  CHECK(raw->attempts.load() == 1);  // not retried
  {
    std::lock_guard<std::mutex> lock(mu);
    REQUIRE(failures.size() == 1);
    CHECK(failures[0] ==
          "invalid argument: sink 'warehouse' (postgres) flush failed: column \"entries\" has "
          "type text, expected bigint");
  }
  CHECK(pool.NotReadyReason().find("sink warehouse failed") == 0);
  pool.Stop();
}

// A sink that records the rows of each flush. Its first Flush() blocks until Release(), so a
// test can queue submissions behind a busy writer (load) and see how they are batched.
class GatedSink final : public Sink {
 public:
  explicit GatedSink(milliseconds write_takes = milliseconds(0)) : write_takes_(write_takes) {}
  base::Status Open() override { return {}; }
  base::Status Write(std::span<const window::WindowRow> rows) override {
    if (write_takes_.count() > 0) std::this_thread::sleep_for(write_takes_);
    pending_ += rows.size();
    return {};
  }
  base::Status Flush() override {
    std::unique_lock<std::mutex> lock(mu_);
    if (flushes_.empty()) {
      entered_ = true;
      cv_.notify_all();
      cv_.wait(lock, [&] { return released_; });
    }
    flushes_.push_back(pending_);
    pending_ = 0;
    return {};
  }
  base::Status Close() override { return {}; }
  // False when no flush began within `timeout` (that only ends a hang).
  bool WaitEntered(milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return entered_; });
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  std::vector<size_t> Flushes() {
    std::lock_guard<std::mutex> lock(mu_);
    return flushes_;
  }

 private:
  const milliseconds write_takes_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool entered_ = false;
  bool released_ = false;
  std::vector<size_t> flushes_;  // rows per flush, guarded by mu_
  size_t pending_ = 0;           // writer thread only
};

// Submits one batch, waits until the writer is blocked in its first flush, queues `queued`
// more behind it, releases the flush and waits for everything to be acknowledged (no Drain).
// Returns the rows of each flush.
std::vector<size_t> FlushesUnderLoad(config::SinkConfig c, int queued, milliseconds write_takes) {
  std::vector<WriterPool::Entry> entries;
  auto sink = std::make_unique<GatedSink>(write_takes);
  GatedSink* raw = sink.get();
  entries.push_back({c, std::move(sink)});
  WriterPool pool(std::move(entries), nullptr);
  pool.Start();
  pool.Submit(OneRow(), std::chrono::steady_clock::now());
  // Flushed with nothing queued behind it: the queue is empty.
  const bool entered = raw->WaitEntered(std::chrono::seconds(10));
  CHECK(entered);
  if (!entered) raw->Release();
  uint64_t last = 0;
  for (int i = 0; i < queued; ++i) last = pool.Submit(OneRow(), std::chrono::steady_clock::now());
  raw->Release();
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (pool.Acked() < last && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  CHECK(pool.Acked() >= last);
  pool.Stop();
  return raw->Flushes();
}

config::SinkConfig GatedConfig(int batch_rows, int64_t flush_interval_ms) {
  config::SinkConfig c;
  c.name = "warehouse";
  c.type = config::SinkType::kPostgres;
  c.batch_rows = batch_rows;
  c.flush_interval = flush_interval_ms;
  return c;
}

// A sink that records the stations of each flush, in the order they were written.
class OrderSink final : public Sink {
 public:
  base::Status Open() override { return {}; }
  base::Status Write(std::span<const window::WindowRow> rows) override {
    for (const auto& r : rows) pending_.push_back(r.station);
    return {};
  }
  base::Status Flush() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!pending_.empty()) flushes_.push_back(std::move(pending_));
    pending_.clear();
    return {};
  }
  base::Status Close() override { return {}; }
  std::vector<std::vector<std::string>> Flushes() {
    std::lock_guard<std::mutex> lock(mu_);
    return flushes_;
  }

 private:
  std::mutex mu_;
  std::vector<std::vector<std::string>> flushes_;  // guarded by mu_
  std::vector<std::string> pending_;               // writer thread only
};

TEST_CASE("a submission of several batches is written in order and flushed whole") {
  // A bounded input's last windows come from every shard as one submission: a file sink must
  // get all of a window's rows in one flush, even past batch_rows.
  std::vector<WriterPool::Entry> entries;
  auto sink = std::make_unique<OrderSink>();
  OrderSink* raw = sink.get();
  entries.push_back({GatedConfig(2, 3600000), std::move(sink)});
  WriterPool pool(std::move(entries), nullptr);
  pool.Start();
  auto part = [](std::vector<std::string> stations) {
    auto rows = std::make_shared<std::vector<window::WindowRow>>();
    for (auto& s : stations) rows->push_back(testing::MakeRow(s, 1704513600000, 1704528000000));
    return RowBatchPtr(std::move(rows));
  };
  std::vector<RowBatchPtr> parts{part({"A", "B"}), part({}), part({"C", "D", "E"})};
  const uint64_t seq = pool.Submit(std::move(parts), std::chrono::steady_clock::now());
  CHECK(pool.Drain(std::chrono::seconds(120)));
  CHECK(pool.Acked() >= seq);
  pool.Stop();
  CHECK(raw->Flushes() == std::vector<std::vector<std::string>>{{"A", "B", "C", "D", "E"}});
}

TEST_CASE("under load the writer keeps writing and flushes once its queue is empty") {
  // Three submissions queued behind a busy flush go out together in the next one.
  CHECK(FlushesUnderLoad(GatedConfig(1000, 3600000), 3, milliseconds(0)) ==
        std::vector<size_t>{1, 3});
}

TEST_CASE("under load a flush comes every batch_rows rows") {
  CHECK(FlushesUnderLoad(GatedConfig(2, 3600000), 5, milliseconds(0)) ==
        std::vector<size_t>{1, 2, 2, 1});
}

TEST_CASE("under load no written row waits longer than flush_interval for a flush") {
  // Each write takes 5 ms, longer than flush_interval: every submission is flushed on its own
  // although more are queued behind it.
  CHECK(FlushesUnderLoad(GatedConfig(1000, 1), 3, milliseconds(5)) ==
        std::vector<size_t>{1, 1, 1, 1});
}

}  // namespace
}  // namespace turnstiled::sink
