#include "sink/writer_pool.h"

#include <algorithm>
#include <random>

#include "base/log.h"
#include "base/thread_name.h"

namespace turnstiled::sink {

using Clock = std::chrono::steady_clock;
using base::Log;
using base::LogLevel;

WriterPool::WriterPool(std::vector<Entry> entries, metrics::PipelineMetrics* metrics,
                       size_t queue_capacity)
    : capacity_(std::max<size_t>(1, queue_capacity)) {
  for (size_t i = 0; i < entries.size(); ++i) {
    auto w = std::make_unique<Writer>();
    w->entry = std::move(entries[i]);
    if (metrics != nullptr && i < metrics->sinks.size()) w->metrics = &metrics->sinks[i];
    writers_.push_back(std::move(w));
  }
}

WriterPool::~WriterPool() { Stop(); }

void WriterPool::Start() {
  started_ = true;
  for (auto& w : writers_) w->thread = std::thread([this, p = w.get()] { Run(p); });
}

uint64_t WriterPool::Submit(RowBatchPtr rows, Clock::time_point emitted, int64_t append_ms) {
  std::vector<RowBatchPtr> parts;
  parts.push_back(std::move(rows));
  return Submit(std::move(parts), emitted, append_ms);
}

uint64_t WriterPool::Submit(std::vector<RowBatchPtr> parts, Clock::time_point emitted,
                            int64_t append_ms) {
  std::lock_guard<std::mutex> order(submit_mu_);
  const uint64_t seq = submitted_.load() + 1;
  for (auto& w : writers_) {
    std::unique_lock<std::mutex> lock(w->mu);
    w->cv.wait(lock,
               [&] { return w->queue.size() < capacity_ || stopping_.load() || w->failed.load(); });
    // Aborted: these rows are never written, and their sequence number is never handed out,
    // so no acknowledgement can cover them.
    if (stopping_.load()) return seq - 1;
    // A sink that failed for good never acknowledges again, whatever it is given.
    if (w->failed.load()) continue;
    w->queue.push_back(Item{parts, seq, emitted, append_ms});
    if (w->metrics != nullptr) w->metrics->queue_depth->Set(static_cast<double>(w->queue.size()));
    w->cv.notify_all();
  }
  submitted_.store(seq);
  return seq;
}

uint64_t WriterPool::Acked() const {
  uint64_t acked = submitted_.load();
  for (const auto& w : writers_) acked = std::min(acked, w->acked.load());
  return acked;
}

void WriterPool::RequestFlush() {
  const uint64_t target = submitted_.load();
  for (auto& w : writers_) {
    std::lock_guard<std::mutex> lock(w->mu);
    // One pending request is enough.
    if (!w->queue.empty() && w->queue.back().parts.empty()) {
      w->queue.back().seq = std::max(w->queue.back().seq, target);
      continue;
    }
    w->queue.push_back(Item{{}, target, Clock::now()});
    w->cv.notify_all();
  }
}

void WriterPool::Abort() {
  stopping_.store(true);
  for (auto& w : writers_) {
    std::lock_guard<std::mutex> lock(w->mu);
    w->cv.notify_all();
  }
}

bool WriterPool::Drain(std::chrono::milliseconds timeout) {
  const uint64_t target = submitted_.load();
  for (auto& w : writers_) {
    std::lock_guard<std::mutex> lock(w->mu);
    w->queue.push_back(Item{{}, target, Clock::now()});
    w->cv.notify_all();
  }
  const auto deadline = Clock::now() + timeout;
  for (auto& w : writers_) {
    std::unique_lock<std::mutex> lock(w->mu);
    if (!w->cv.wait_until(
            lock, deadline,
            [&] { return w->acked.load() >= target || stopping_.load() || w->failed.load(); }) ||
        w->acked.load() < target) {
      return false;
    }
  }
  return true;
}

void WriterPool::Stop() {
  if (!started_) return;
  started_ = false;
  stopping_.store(true);
  for (auto& w : writers_) {
    {
      std::lock_guard<std::mutex> lock(w->mu);
      w->cv.notify_all();
    }
    if (w->thread.joinable()) w->thread.join();
  }
}

bool WriterPool::Failed() const {
  for (const auto& w : writers_) {
    if (w->failed.load()) return true;
  }
  return false;
}

bool WriterPool::Saturated() const {
  for (const auto& w : writers_) {
    std::lock_guard<std::mutex> lock(w->mu);
    if (w->queue.size() >= capacity_) return true;
  }
  return false;
}

bool WriterPool::Stalled(std::chrono::milliseconds for_at_least) const {
  const int64_t now = Clock::now().time_since_epoch().count();
  const int64_t span = std::chrono::duration_cast<Clock::duration>(for_at_least).count();
  for (const auto& w : writers_) {
    const int64_t since = w->failing_since_ns.load();
    if (since != 0 && !w->failed.load() && now - since >= span) return true;
  }
  return false;
}

std::string WriterPool::NotReadyReason() const {
  for (const auto& w : writers_) {
    if (w->failed.load()) {
      std::lock_guard<std::mutex> lock(w->mu);
      return "sink " + w->entry.config.name + " failed: " + w->last_error;
    }
    if (!w->healthy.load()) {
      std::lock_guard<std::mutex> lock(w->mu);
      return "sink " + w->entry.config.name + ": " +
             (w->last_error.empty() ? std::string("not open yet") : w->last_error);
    }
  }
  return "";
}

template <typename Op>
bool WriterPool::Retry(Writer* w, const char* what, size_t rows, Op op) {
  auto backoff = std::chrono::milliseconds(100);
  thread_local std::minstd_rand jitter(std::random_device{}());
  for (;;) {
    const base::Status s = op();
    if (s.ok()) {
      w->failing_since_ns.store(0);
      w->healthy.store(true);
      if (w->metrics != nullptr) w->metrics->up->Set(1);
      return true;
    }
    w->healthy.store(false);
    int64_t zero = 0;
    w->failing_since_ns.compare_exchange_strong(zero, Clock::now().time_since_epoch().count());
    if (w->metrics != nullptr) w->metrics->up->Set(0);
    {
      std::lock_guard<std::mutex> lock(w->mu);
      w->last_error = std::string(what) + " failed: " + base::Redact(s.ToString());
    }
    if (!s.IsRetryable()) {
      const base::Status failure(s.code(), "sink '" + w->entry.config.name + "' (" +
                                               config::Name(w->entry.config.type) + ") " + what +
                                               " failed: " + base::Redact(s.message()));
      Log(LogLevel::kError, "sink", "sink failed permanently; stopping the job",
          {{"sink", w->entry.config.name}, {"op", what}, {"error", base::Redact(s.ToString())}});
      if (w->metrics != nullptr) w->metrics->rows_failed->Increment(static_cast<double>(rows));
      // The handler first: whoever sees the sink failed also finds the failure reported.
      if (on_failure_) on_failure_(failure);
      {
        std::lock_guard<std::mutex> lock(w->mu);
        w->failed.store(true);
        w->queue.clear();
        w->cv.notify_all();
      }
      return false;
    }
    if (w->metrics != nullptr) {
      w->metrics->rows_failed->Increment(static_cast<double>(rows));
      w->metrics->retries->Increment();
    }
    Log(LogLevel::kWarn, "sink", "sink operation failed; will retry",
        {{"sink", w->entry.config.name},
         {"op", what},
         {"error", base::Redact(s.ToString())},
         {"retry_in_ms", std::to_string(backoff.count())}});
    // Jitter: many instances that lost one database together do not come back in step.
    const auto wait =
        backoff / 2 + std::chrono::milliseconds(std::uniform_int_distribution<int64_t>(
                          0, std::max<int64_t>(1, backoff.count() / 2))(jitter));
    std::unique_lock<std::mutex> lock(w->mu);
    if (w->cv.wait_for(lock, wait, [&] { return stopping_.load(); })) return false;
    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
  }
}

std::chrono::milliseconds WriterPool::FlushPeriod(const config::SinkConfig& config) {
  int64_t ms = config.flush_interval;
  if (config.type == config::SinkType::kFile) ms = std::min(ms, config.roll_interval);
  return std::chrono::milliseconds(std::max<int64_t>(1, ms));
}

void WriterPool::Run(Writer* w) {
  base::NameThisThread(std::string("sink-").append(w->entry.config.name));
  Sink& sink = *w->entry.sink;
  const auto flush_every = FlushPeriod(w->entry.config);
  const size_t batch_rows = static_cast<size_t>(std::max(1, w->entry.config.batch_rows));
  if (!Retry(w, "open", 0, [&] { return sink.Open(); })) return;
  Log(LogLevel::kInfo, "sink", "sink open",
      {{"sink", w->entry.config.name}, {"type", config::Name(w->entry.config.type)}});

  uint64_t written_seq = 0;  // highest seq written but not yet flushed
  size_t unflushed_rows = 0;
  std::vector<std::pair<Clock::time_point, int64_t>> unflushed_emits;  // emitted, append_ms
  // When the oldest item written since the last flush was taken off the queue; meaningful only
  // while `pending()`.
  auto pending_since = Clock::now();
  // Something was written (or a flush request covers something) that is not acknowledged yet.
  auto pending = [&] { return unflushed_rows > 0 || written_seq > w->acked.load(); };

  uint64_t bytes_seen = 0;
  uint64_t files_seen = 0;
  auto flush = [&]() -> bool {
    const auto started = Clock::now();
    if (!Retry(w, "flush", unflushed_rows, [&] { return sink.Flush(); })) return false;
    const auto now = Clock::now();
    if (w->metrics != nullptr) {
      w->metrics->rows_written->Increment(static_cast<double>(unflushed_rows));
      if (unflushed_rows > 0) {
        w->metrics->batches->Increment();
        w->metrics->flush_duration->Observe(std::chrono::duration<double>(now - started).count());
      }
      const uint64_t bytes = sink.BytesWritten();
      const uint64_t files = sink.FilesWritten();
      if (bytes > bytes_seen) w->metrics->bytes->Increment(static_cast<double>(bytes - bytes_seen));
      if (files > files_seen) w->metrics->files->Increment(static_cast<double>(files - files_seen));
      bytes_seen = bytes;
      files_seen = files;
      w->metrics->journal_bytes->Set(static_cast<double>(sink.JournalBytes()));
      const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
      for (const auto& [emitted, append_ms] : unflushed_emits) {
        w->metrics->emit_delay->Observe(std::chrono::duration<double>(now - emitted).count());
        if (append_ms != window::kNoTime) {
          // A producer's clock may run ahead of ours: never a negative latency.
          w->metrics->end_to_end_latency->Observe(
              static_cast<double>(std::max<int64_t>(0, now_ms - append_ms)) / 1000.0);
        }
      }
    }
    unflushed_rows = 0;
    unflushed_emits.clear();
    std::lock_guard<std::mutex> lock(w->mu);
    w->acked.store(std::max(w->acked.load(), written_seq));
    w->cv.notify_all();
    return true;
  };

  // Flush on close: a submission is flushed as soon as the queue behind it is empty, so a closed
  // window waits for no timer. Under load the queue is rarely empty and the writer keeps
  // writing: it flushes at `batch_rows`, or once the oldest unflushed item has waited
  // `flush_every`, or when the queue runs dry, whichever comes first. A submission is never
  // split between flushes (a file sink gets all of a file's rows in one flush).
  for (;;) {
    Item item;
    bool idle_flush = false;
    {
      std::unique_lock<std::mutex> lock(w->mu);
      if (w->queue.empty() && !stopping_.load() && !pending()) {
        w->cv.wait(lock, [&] { return !w->queue.empty() || stopping_.load(); });
      }
      if (!w->queue.empty()) {
        item = std::move(w->queue.front());
        w->queue.pop_front();
        if (w->metrics != nullptr)
          w->metrics->queue_depth->Set(static_cast<double>(w->queue.size()));
        w->cv.notify_all();
      } else if (stopping_.load()) {
        break;
      } else {
        idle_flush = true;  // nothing more queued: make what was written durable now
      }
    }
    if (idle_flush) {
      if (!flush()) break;
      continue;
    }
    if (!pending()) pending_since = Clock::now();
    bool force = false;
    if (!item.parts.empty()) {
      size_t item_rows = 0;
      bool written = true;
      for (const RowBatchPtr& part : item.parts) {
        if (part->empty()) continue;
        written = Retry(w, "write", part->size(), [&] { return sink.WriteBatch(part); });
        if (!written) break;
        item_rows += part->size();
      }
      if (!written) break;
      if (item_rows > 0) {
        unflushed_rows += item_rows;
        unflushed_emits.emplace_back(item.emitted, item.append_ms);
      }
      written_seq = std::max(written_seq, item.seq);
    } else {
      force = true;  // Drain() or RequestFlush()
      written_seq = std::max(written_seq, std::min(item.seq, submitted_.load()));
    }
    // A request that finds everything acknowledged already (an idle flush got there first) has
    // nothing to make durable: the sink is not asked again.
    if ((force && pending()) || unflushed_rows >= batch_rows ||
        (pending() && Clock::now() >= pending_since + flush_every)) {
      if (!flush()) break;
    }
  }
  // Stopping: make what was written durable, then close.
  if (w->failed.load()) {
    const base::Status s = sink.Close();
    (void)s;  // the failure was reported; closing is best effort
    return;
  }
  if (unflushed_rows > 0 || written_seq > w->acked.load()) {
    const base::Status s = sink.Flush();
    if (s.ok()) {
      w->acked.store(std::max(w->acked.load(), written_seq));
    } else {
      Log(LogLevel::kError, "sink", "final flush failed",
          {{"sink", w->entry.config.name}, {"error", base::Redact(s.ToString())}});
    }
  }
  const base::Status s = sink.Close();
  if (w->metrics != nullptr)
    w->metrics->journal_bytes->Set(static_cast<double>(sink.JournalBytes()));
  if (!s.ok()) {
    Log(LogLevel::kWarn, "sink", "close failed",
        {{"sink", w->entry.config.name}, {"error", base::Redact(s.ToString())}});
  }
}

}  // namespace turnstiled::sink
