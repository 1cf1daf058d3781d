#include "ingest/pipeline.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <iterator>
#include <mutex>

#include "base/civil_time.h"
#include "base/log.h"
#include "base/thread_name.h"
#include "ingest/file_source.h"
#include "ingest/kafka_source.h"
#include "live/http.h"

namespace turnstiled::ingest {

using base::Log;
using base::LogLevel;
using Clock = std::chrono::steady_clock;

// Partitions of a changelog topic turnstiled creates (a topic made beforehand keeps its own).
constexpr int kChangelogPartitions = 8;

// Where shards send what they emit and drop. Called from every shard thread at once.
//
// With a Kafka source each input partition lives in one shard, which emits all of a window's
// rows for it at once: rows go straight to the writers. With a file source stations are spread
// over the shards, so a window's rows come from several of them: they are held here until every
// shard has closed the window (the lowest shard watermark passes its end), then submitted
// together, so a sink that keeps one file per window gets all of its rows in one flush.
class Pipeline::Output : public window::ShardOutput {
 public:
  Output(Pipeline* p, bool gather, int shards)  // NOLINT
      : p_(p), gather_(gather), watermarks_(static_cast<size_t>(shards), window::kNoTime) {}

  void Emit(int shard, std::vector<window::WindowRow>&& rows, int64_t watermark_ms,
            int64_t append_ms) override {
    if (p_->metrics_ && watermark_ms != window::kNoTime && watermark_ms != window::kEndOfTime) {
      p_->metrics_->shard_watermark[static_cast<size_t>(shard)]->Set(
          static_cast<double>(watermark_ms) / 1000.0);
    }
    if (!gather_) {
      if (rows.empty()) return;
      auto batch = std::make_shared<const std::vector<window::WindowRow>>(std::move(rows));
      if (p_->live_) p_->live_->Publish(live::Kind::kClose, batch);
      p_->writers_->Submit(std::move(batch), Clock::now(), append_ms);
      return;
    }
    std::lock_guard<std::mutex> lock(mu_);
    watermarks_[static_cast<size_t>(shard)] = watermark_ms;
    // Each shard's rows stay in their own vector: at the end of a bounded input they are one
    // submission of several batches, not one vector that all of them are moved into.
    if (!rows.empty()) held_.push_back(std::move(rows));
    if (append_ms > append_ms_) append_ms_ = append_ms;
    int64_t low = window::kEndOfTime;
    for (int64_t w : watermarks_) low = std::min(low, w);
    if (low == window::kNoTime || held_.empty()) return;
    auto is_ready = [low](const window::WindowRow& r) {
      return r.window_end_ms <= low || !r.final;
    };
    std::vector<sink::RowBatchPtr> ready;
    std::vector<std::vector<window::WindowRow>> keep;
    for (auto& part : held_) {
      if (std::all_of(part.begin(), part.end(), is_ready)) {
        // The usual case at the end of a bounded input.
        ready.push_back(std::make_shared<const std::vector<window::WindowRow>>(std::move(part)));
        continue;
      }
      std::vector<window::WindowRow> now;
      std::vector<window::WindowRow> later;
      for (auto& r : part) (is_ready(r) ? now : later).push_back(std::move(r));
      if (!now.empty()) {
        ready.push_back(std::make_shared<const std::vector<window::WindowRow>>(std::move(now)));
      }
      keep.push_back(std::move(later));
    }
    held_ = std::move(keep);
    if (ready.empty()) return;
    if (p_->live_) {
      for (const auto& batch : ready) p_->live_->Publish(live::Kind::kClose, batch);
    }
    p_->writers_->Submit(std::move(ready), Clock::now(), append_ms_);
  }

  void Dropped(window::DropReason reason, const window::RecordBatch& batch,
               const window::RoutedRecord& r) override {
    const auto [topic, partition] = p_->partitions_.Lookup(r.partition);
    p_->dead_letter_->Write(
        {window::Name(reason), topic, partition, r.offset, r.event_ms, batch.Raw(r)});
    if (p_->metrics_) p_->metrics_->dead_letters->Increment();
  }

 private:
  Pipeline* const p_;
  const bool gather_;
  std::mutex mu_;
  std::vector<int64_t> watermarks_;                   // by shard; guarded by mu_
  std::vector<std::vector<window::WindowRow>> held_;  // a part per emit; guarded by mu_
  int64_t append_ms_ = window::kNoTime;               // guarded by mu_
};

base::Result<std::unique_ptr<Pipeline>> Pipeline::Create(const config::Config& config,
                                                         const RunOptions& options) {
  std::unique_ptr<Pipeline> p(new Pipeline(config, options));
  base::Status s = p->Init();
  if (!s.ok()) return s;
  return p;
}

Pipeline::Pipeline(const config::Config& config, const RunOptions& options)
    : config_(config), options_(options) {}

Pipeline::~Pipeline() {
  // The HTTP server's threads call back into this object (readiness, liveness): they go first.
  EndLive();
  live_http_.reset();
  http_.reset();
  stop_.store(true);
  sources_done_.store(true);
  for (auto& t : shard_threads_) {
    if (t.joinable()) t.join();
  }
  if (writers_) writers_->Stop();
}

base::Status Pipeline::Init() {
  num_shards_ = config_.pipeline.shards > 0
                    ? config_.pipeline.shards
                    : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));

  std::vector<std::string> decode_reasons;
  for (int i = 0; i < decode::kDecodeStatusCount; ++i) {
    decode_reasons.emplace_back(decode::Name(static_cast<decode::DecodeStatus>(i)));
  }
  std::vector<std::string> drop_reasons;
  for (int i = 0; i < window::kDropReasonCount; ++i) {
    drop_reasons.emplace_back(window::Name(static_cast<window::DropReason>(i)));
  }
  std::vector<std::string> sink_names;
  for (const auto& s : config_.sinks) sink_names.push_back(s.name);
  metrics_ = std::make_unique<metrics::PipelineMetrics>(decode_reasons, drop_reasons, sink_names,
                                                        num_shards_);

  auto dl = sink::MakeDeadLetter(config_.dead_letter);
  if (!dl.ok()) return dl.status();
  dead_letter_ = std::move(dl).value();

  std::vector<sink::WriterPool::Entry> entries;
  for (const auto& sc : config_.sinks) {
    auto s = sink::MakeSink(sc);
    if (!s.ok()) {
      return base::Status(s.status().code(), "sink '" + sc.name + "': " + s.status().message());
    }
    entries.push_back({sc, std::move(s).value()});
  }
  writers_ = std::make_unique<sink::WriterPool>(std::move(entries), metrics_.get());
  const bool kafka = config_.source.type == config::SourceType::kKafka;
  output_ = std::make_unique<Output>(this, /*gather=*/!kafka, num_shards_);
  if (config_.live.enabled && (config_.metrics.enabled || !config_.live.listen.empty())) {
    live::HubOptions lo;
    lo.coalesce = std::chrono::milliseconds(config_.live.coalesce);
    lo.heartbeat = std::chrono::milliseconds(config_.live.heartbeat);
    lo.max_clients = config_.live.max_clients;
    lo.buffer_events = static_cast<size_t>(config_.live.buffer_events);
    const config::WindowConfig& wc = config_.window;
    lo.window_json = std::string("{\"type\":\"") + config::Name(wc.type) +
                     "\",\"size_ms\":" + std::to_string(wc.size) +
                     ",\"slide_ms\":" + std::to_string(wc.slide > 0 ? wc.slide : wc.size) +
                     ",\"emit\":\"" + config::Name(wc.emit) + "\"}";
    live_ = std::make_unique<live::Hub>(lo, metrics_->registry.get(), [this, kafka] {
      live::Stats st;
      const metrics::PipelineMetrics& m = *metrics_;
      st.records = static_cast<uint64_t>(m.consumed_records->Value());
      double low = 0;
      for (const auto* g : m.shard_watermark) {
        const double v = g->Value();
        if (v > 0 && (low == 0 || v < low)) low = v;
      }
      st.watermark_ms = static_cast<int64_t>(low * 1000);
      if (kafka) {
        st.has_lag = true;
        for (const auto& family : m.consumer_lag->Collect()) {
          for (const auto& metric : family.metric) st.lag += metric.gauge.value;
        }
      }
      for (const auto* g : m.open_windows) st.open_windows += static_cast<uint64_t>(g->Value());
      return st;
    });
  }

  if (kafka) {
    state::CheckpointerOptions co;
    co.dir = config_.state.dir;
    co.group = config_.source.kafka.group_id;
    co.changelog_topic = config_.state.changelog_topic_set
                             ? config_.state.changelog_topic
                             : config_.source.kafka.group_id + "-state";
    co.bootstrap = config_.source.kafka.bootstrap_servers;
    for (const auto& [k, v] : config_.source.kafka.properties) {
      // Security and client settings carry over to the changelog's producer and reader;
      // consumer tuning does not.
      if (k.rfind("security.", 0) == 0 || k.rfind("sasl.", 0) == 0 || k.rfind("ssl.", 0) == 0 ||
          k == "client.rack" || k == "broker.address.family") {
        co.properties[k] = v;
      }
    }
    co.partitions_hint = kChangelogPartitions;
    co.interval = std::chrono::milliseconds(config_.state.checkpoint_interval);
    sink::WriterPool* w = writers_.get();
    sink::DeadLetter* dead = dead_letter_.get();
    state::AckTracker acks{[w] { return w->Submitted(); }, [w] { return w->Acked(); },
                           [w] { w->RequestFlush(); }, [w] { return w->Failed(); },
                           [dead] { return dead->Flush(); }};
    auto cp = state::Checkpointer::Create(co, std::move(acks), &metrics_->state);
    if (!cp.ok()) return cp.status();
    checkpointer_ = std::move(cp).value();
  }

  IngestContext ctx;
  ctx.config = &config_;
  ctx.checkpointer = checkpointer_.get();
  ctx.stop_requested_ns = &stop_requested_ns_;
  ctx.fail = [this](const base::Status& s) {
    {
      std::lock_guard<std::mutex> lock(fail_mu_);
      if (failure_.ok()) failure_ = s;
    }
    Log(LogLevel::kError, "pipeline", "stopping: a source cannot go on", {{"error", s.ToString()}});
    RequestStop();
  };
  // A sink that failed for good stops the job: nothing it did not write is committed.
  writers_->SetFailureHandler([this](const base::Status& s) {
    {
      std::lock_guard<std::mutex> lock(fail_mu_);
      if (failure_.ok()) failure_ = s;
    }
    RequestStop();
  });
  ctx.metrics = metrics_.get();
  ctx.cancel = options_.cancel;
  // A sink that has been failing for a second pauses fetching at once, instead of after the
  // queues in front of it fill.
  ctx.sinks_stalled = [w = writers_.get()] { return w->Stalled(std::chrono::seconds(1)); };
  ctx.dead_letter = dead_letter_.get();
  ctx.partitions = &partitions_;
  shard_beats_ = std::make_unique<std::atomic<int64_t>[]>(static_cast<size_t>(num_shards_));
  for (int i = 0; i < num_shards_; ++i) {
    channels_.push_back(std::make_unique<ShardChannel>());
    ctx.shards.push_back(channels_.back().get());
  }

  if (config_.source.type == config::SourceType::kFile) {
    auto fs = FileSource::Create(ctx, 0);
    if (!fs.ok()) return fs.status();
    sources_.push_back(std::move(fs).value());
  } else {
    auto ks = MakeKafkaSources(ctx, options_.available_now);
    if (!ks.ok()) return ks.status();
    for (auto& s : ks.value()) sources_.push_back(std::move(s));
  }

  window::ShardOptions so;
  so.window = config_.window;
  so.counters = config_.format.counters;
  so.max_delta = config_.format.max_delta;
  so.num_sources = static_cast<int>(sources_.size());
  so.detect_conflicts = kafka;
  so.source_name = [this](int32_t slot) {
    const auto [topic, partition] = partitions_.Lookup(slot);
    return partition < 0 ? std::string() : topic + "-" + std::to_string(partition);
  };
  for (int i = 0; i < num_shards_; ++i) {
    shards_.push_back(std::make_unique<window::Shard>(i, so, output_.get()));
  }
  return base::Status::Ok();
}

std::vector<std::pair<std::string_view, std::string>> Pipeline::ProgressFields() const {
  const metrics::PipelineMetrics& m = *metrics_;
  std::vector<std::pair<std::string_view, std::string>> out;
  out.emplace_back("records", std::to_string(static_cast<uint64_t>(m.consumed_records->Value())));
  double low = 0;
  for (const auto* g : m.shard_watermark) {
    const double v = g->Value();
    if (v > 0 && (low == 0 || v < low)) low = v;
  }
  std::string iso = "none";  // no window has been judged yet
  if (low > 0) {
    iso.clear();
    base::AppendIsoUtc(static_cast<int64_t>(low * 1000), &iso);
  }
  out.emplace_back("watermark", iso);
  double lag = 0;
  for (const auto& family : m.consumer_lag->Collect()) {
    for (const auto& metric : family.metric) lag += metric.gauge.value;
  }
  if (config_.source.type == config::SourceType::kKafka) {
    out.emplace_back("lag", std::to_string(static_cast<uint64_t>(lag)));
  }
  out.emplace_back("windows", std::to_string(static_cast<uint64_t>(m.windows_emitted->Value())));
  for (int r = 0; r < window::kDropReasonCount; ++r) {
    const double v = m.dropped[static_cast<size_t>(r)]->Value();
    if (v > 0) {
      out.emplace_back(window::Name(static_cast<window::DropReason>(r)),
                       std::to_string(static_cast<uint64_t>(v)));
    }
  }
  double bad = 0;
  for (const auto* c : m.decode_errors) {
    if (c != nullptr) bad += c->Value();  // no series for "ok" and "header"
  }
  if (bad > 0) out.emplace_back("malformed", std::to_string(static_cast<uint64_t>(bad)));
  const double last = m.state.last_checkpoint->Value();
  if (checkpointer_ && last > 0) {
    const double age =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count() -
        last;
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", std::max(0.0, age));
    out.emplace_back("checkpoint_age_s", buf);
  }
  return out;
}

std::string Pipeline::StuckReason() const {
  // Longer than any loop turn: a poll is 100 ms, a shard's wait 50 ms; a rebalance's restore
  // may take a few seconds.
  constexpr int64_t kStuckNs = 10'000'000'000;
  const int64_t now = Clock::now().time_since_epoch().count();
  // A full sink queue blocks the shards, and through them the sources: backpressure.
  if (writers_->Saturated()) return "";
  if (sources_running_.load()) {
    for (size_t i = 0; i < sources_.size(); ++i) {
      const int64_t beat = sources_[i]->last_beat_ns();
      if (beat != 0 && now - beat > kStuckNs) {
        return "source " + std::to_string(i) + " has not looped for " +
               std::to_string((now - beat) / 1'000'000'000) + " s";
      }
    }
  }
  for (int i = 0; i < num_shards_; ++i) {
    const int64_t beat = shard_beats_[static_cast<size_t>(i)].load(std::memory_order_relaxed);
    if (beat != 0 && now - beat > kStuckNs) {
      return "shard " + std::to_string(i) + " has not looped for " +
             std::to_string((now - beat) / 1'000'000'000) + " s";
    }
  }
  return "";
}

std::string Pipeline::NotReadyReason() const {
  // Every reason, not the first: a sink that is down shows even during a rebalance.
  std::string out;
  auto add = [&out](const std::string& r) {
    if (r.empty()) return;
    if (!out.empty()) out += "; ";
    out += r;
  };
  for (const auto& s : sources_) add(s->NotReadyReason());
  add(writers_->NotReadyReason());
  return out;
}

void Pipeline::ShardLoop(int index) {
  base::NameThisThread(std::string("shard-").append(std::to_string(index)));
  window::Shard& shard = *shards_[static_cast<size_t>(index)];
  ShardChannel& ch = *channels_[static_cast<size_t>(index)];
  metrics::PipelineMetrics& m = *metrics_;
  // A file source emits each window once, at the end of its input: no update rows.
  const bool updates = config_.window.emit == config::EmitMode::kUpdate &&
                       config_.source.type == config::SourceType::kKafka;
  const auto update_every =
      std::chrono::milliseconds(std::max<int64_t>(1, config_.window.update_interval));
  auto next_update = Clock::now() + update_every;
  window::ShardStats published;

  auto process = [&](window::RecordBatch* b) {
    ch.depth.fetch_sub(1, std::memory_order_relaxed);
    if (b->control) shard.Control(*b->control);
    shard.Process(*b);
    sources_[static_cast<size_t>(b->source)]->router().Release(b);
    // Metrics once per batch, as deltas of the shard's plain counters.
    const window::ShardStats& st = shard.stats();
    for (int r = 0; r < window::kDropReasonCount; ++r) {
      if (st.dropped[r] != published.dropped[r]) {
        m.dropped[static_cast<size_t>(r)]->Increment(
            static_cast<double>(st.dropped[r] - published.dropped[r]));
      }
    }
    if (st.counter_resets != published.counter_resets) {
      m.counter_resets->Increment(
          static_cast<double>(st.counter_resets - published.counter_resets));
    }
    if (st.windows_emitted != published.windows_emitted) {
      m.windows_emitted->Increment(
          static_cast<double>(st.windows_emitted - published.windows_emitted));
    }
    if (st.saturated_sums != published.saturated_sums) {
      m.saturated_sums->Increment(
          static_cast<double>(st.saturated_sums - published.saturated_sums));
    }
    if (st.partition_conflicts != published.partition_conflicts) {
      m.partition_conflicts->Increment(
          static_cast<double>(st.partition_conflicts - published.partition_conflicts));
    }
    if (st.update_rows != published.update_rows) {
      m.update_rows->Increment(static_cast<double>(st.update_rows - published.update_rows));
    }
    published = st;
    m.open_windows[static_cast<size_t>(index)]->Set(static_cast<double>(shard.open_windows()));
    m.shard_queue_depth[static_cast<size_t>(index)]->Set(
        static_cast<double>(ch.depth.load(std::memory_order_relaxed)));
  };

  std::vector<window::WindowRow> live_rows;
  uint64_t live_generation = 0;
  auto next_live = Clock::now();
  std::atomic<int64_t>& beat = shard_beats_[static_cast<size_t>(index)];
  for (;;) {
    beat.store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
    window::RecordBatch* b = nullptr;
    // A nullptr is the wake-up Run() sends once the sources have returned.
    if (ch.queue.wait_dequeue_timed(b, std::chrono::milliseconds(50)) && b != nullptr) {
      process(b);
    } else if (sources_done_.load()) {
      // Every source has returned, so everything it sent is already in the queue.
      while (ch.queue.try_dequeue(b)) {
        if (b != nullptr) process(b);
      }
      break;
    }
    if (updates && Clock::now() >= next_update) {
      shard.EmitUpdates();
      next_update = Clock::now() + update_every;
    }
    // The live view: one relaxed load per turn while nobody watches.
    if (live_ != nullptr && live_->watching()) {
      const auto now = Clock::now();
      if (now >= next_live) {
        const uint64_t generation = live_->snapshot_generation();
        live_rows.clear();
        shard.CollectLive(generation != live_generation, &live_rows);
        live_generation = generation;
        live_->Publish(live::Kind::kUpdate, std::move(live_rows));
        next_live = now + live_->options().coalesce;
      }
    }
  }
  if (close_all_.load()) shard.CloseAll();
  m.open_windows[static_cast<size_t>(index)]->Set(static_cast<double>(shard.open_windows()));
  beat.store(0, std::memory_order_relaxed);  // returned: not a hang
}

base::Status Pipeline::Run() {
  writers_->Start();
  for (int i = 0; i < num_shards_; ++i) shard_threads_.emplace_back([this, i] { ShardLoop(i); });
  if (config_.metrics.enabled) {
    const std::string listen = options_.metrics_listen_override.empty()
                                   ? config_.metrics.listen
                                   : options_.metrics_listen_override;
    metrics::HttpServer::RequestHook hook;
    if (live_ && config_.live.listen.empty()) {
      hook = [hub = live_.get()](mg_connection* conn, const std::string& uri, bool head) {
        return live::HandleRequest(*hub, conn, uri, head);
      };
    }
    auto http = metrics::HttpServer::Start(
        listen, metrics_->registry, [this] { return NotReadyReason(); },
        [this] { return StuckReason(); }, std::move(hook));
    if (!http.ok()) {
      // Metrics are for watching; failing to serve them must not stop the data.
      Log(LogLevel::kError, "metrics", "metrics endpoint not started",
          {{"listen", listen}, {"error", http.status().ToString()}});
    } else {
      http_ = std::move(http).value();
      Log(LogLevel::kInfo, "metrics",
          live_ && config_.live.listen.empty() ? "serving /metrics, /healthz, /readyz, /live"
                                               : "serving /metrics, /healthz, /readyz",
          {{"port", std::to_string(http_->port())}});
    }
  }
  if (live_ && !config_.live.listen.empty()) {
    auto http = metrics::HttpServer::Start(
        config_.live.listen, nullptr, {}, {},
        [hub = live_.get()](mg_connection* conn, const std::string& uri, bool head) {
          return live::HandleRequest(*hub, conn, uri, head);
        });
    if (!http.ok()) {
      Log(LogLevel::kError, "live", "live view not started",
          {{"listen", config_.live.listen}, {"error", http.status().ToString()}});
    } else {
      live_http_ = std::move(http).value();
      Log(LogLevel::kInfo, "live", "serving /live and /events",
          {{"port", std::to_string(live_http_->port())}});
    }
  }

  if (checkpointer_) checkpointer_->Start();
  const auto started = Clock::now();
  const auto timeout =
      std::chrono::milliseconds(std::max<int64_t>(1000, config_.pipeline.shutdown_timeout));
  std::vector<std::thread> source_threads;
  sources_running_.store(true);
  for (size_t i = 0; i < sources_.size(); ++i) {
    source_threads.emplace_back([this, i, src = sources_[i].get()] {
      base::NameThisThread(std::string("source-").append(std::to_string(i)));
      src->Run(stop_);
    });
  }
  // A stop must end within shutdown_timeout even with a sink that is down: past most of it,
  // the writers give up, which frees every thread that waits on them.
  std::atomic<bool> sources_returned{false};
  std::mutex watch_mu;
  std::condition_variable watch_cv;
  std::thread watchdog([&] {
    base::NameThisThread("stop-watch");
    std::unique_lock<std::mutex> lock(watch_mu);
    while (!sources_returned.load()) {
      const int64_t at = stop_requested_ns_.load();
      if (at != 0 && Clock::now() >= Clock::time_point(Clock::duration(at)) + timeout * 8 / 10) {
        Log(LogLevel::kWarn, "pipeline",
            "shutdown_timeout is running out with rows not acknowledged; giving up on them "
            "(their offsets stay uncommitted)");
        writers_->Abort();
        return;
      }
      watch_cv.wait_for(lock, std::chrono::milliseconds(50));
    }
  });
  for (auto& t : source_threads) t.join();
  sources_running_.store(false);
  if (checkpointer_) checkpointer_->Stop();
  const bool stopped = stop_.load();
  close_all_.store(options_.drain);
  sources_done_.store(true);
  // Wake the shards now rather than at their next 50 ms timeout: at the end of a bounded run
  // that is wall time before the last windows go out.
  for (auto& c : channels_) c->queue.enqueue(nullptr);
  for (auto& t : shard_threads_) t.join();  // --drain may still submit to a full sink
  shard_threads_.clear();
  {
    std::lock_guard<std::mutex> lock(watch_mu);
    sources_returned.store(true);
    watch_cv.notify_all();
  }
  watchdog.join();

  // The input ended (a bounded run): the sinks get the time they need, until a stop is asked
  // for. A stop: what is left of shutdown_timeout.
  bool acked = false;
  for (;;) {
    const int64_t at = stop_requested_ns_.load();
    if (at == 0) {
      if ((acked = writers_->Drain(std::chrono::milliseconds(500)))) break;
      continue;
    }
    const auto left = Clock::time_point(Clock::duration(at)) + timeout - Clock::now();
    acked = writers_->Drain(std::max(std::chrono::milliseconds(100),
                                     std::chrono::duration_cast<std::chrono::milliseconds>(left)));
    break;
  }
  writers_->Stop();
  base::Status flushed = dead_letter_->Flush();
  if (!flushed.ok()) {
    Log(LogLevel::kError, "dead-letter", "flush failed", {{"error", flushed.ToString()}});
  }

  base::Status result = base::Status::Ok();
  {
    std::lock_guard<std::mutex> lock(fail_mu_);
    if (!failure_.ok()) result = failure_;
  }
  if (writers_->Failed()) {
    // Reported above; the offsets stay at the last checkpoint, which the sink had written.
  } else if (!acked) {
    result = base::Status::Unavailable(
        "sinks did not acknowledge every row within shutdown_timeout; offsets not committed");
  } else if (!stopped || options_.drain || checkpointer_) {
    // Everything consumed has been emitted and acknowledged, or (a stop with state) the
    // sources checkpointed their open windows and committed what the checkpoint covers.
    for (auto& s : sources_) {
      base::Status c = s->Commit();
      if (!c.ok()) result = c;
    }
  } else {
    Log(LogLevel::kInfo, "pipeline",
        "stopped with open windows; offsets left where they were so the next start resumes them");
  }
  for (auto& s : sources_) s->Close();
  for (auto& s : sources_) {
    if (auto* fs = dynamic_cast<FileSource*>(s.get()); fs != nullptr && fs->failed()) {
      result = base::Status::IoError("some input files could not be read (see the log)");
    }
  }
  const double secs = std::chrono::duration<double>(Clock::now() - started).count();
  uint64_t windows = 0;
  for (const auto& sh : shards_) windows += sh->stats().windows_emitted;
  uint64_t records = 0;
  for (const auto& sh : shards_) records += sh->stats().records;
  // The end summary: what went in, and where what came out is.
  std::vector<std::string> keys;
  std::vector<std::string> values;
  for (size_t i = 0; i < config_.sinks.size(); ++i) {
    const config::SinkConfig& sc = config_.sinks[i];
    const metrics::SinkMetrics& sm = metrics_->sinks[i];
    std::string where = config::Name(sc.type);
    if (sc.type == config::SinkType::kFile) where.append(" ").append(sc.path);
    if (sc.type == config::SinkType::kPostgres) where.append(" table ").append(sc.table);
    if (sc.type == config::SinkType::kKafka) where.append(" topic ").append(sc.topic);
    where.append(" rows=").append(std::to_string(static_cast<uint64_t>(sm.rows_written->Value())));
    if (sc.type == config::SinkType::kFile) {
      where.append(" files=").append(std::to_string(static_cast<uint64_t>(sm.files->Value())));
    }
    keys.push_back(std::string("sink_").append(sc.name));
    values.push_back(std::move(where));
  }
  std::vector<base::LogField> fields = {
      {"records", std::to_string(records)},
      {"windows", std::to_string(windows)},
      {"seconds", std::to_string(secs)},
      {"records_per_second", std::to_string(secs > 0 ? static_cast<uint64_t>(records / secs) : 0)}};
  for (size_t i = 0; i < keys.size(); ++i) fields.emplace_back(keys[i], values[i]);
  const auto dead = static_cast<uint64_t>(metrics_->dead_letters->Value());
  if (config_.dead_letter.enabled) {
    std::string where = std::to_string(dead);
    if (config_.dead_letter.type == config::SinkType::kFile) {
      where.append(" in ").append(config_.dead_letter.path);
    } else {
      where.append(" to topic ").append(config_.dead_letter.topic);
    }
    fields.emplace_back("dead_letters", std::move(where));
  } else if (dead > 0) {
    fields.emplace_back("dropped_without_dead_letter", std::to_string(dead));
  }
  Log(LogLevel::kInfo, "pipeline", stopped ? "stopped" : "input complete", fields);
  EndLive();
  return result;
}

void Pipeline::EndLive() {
  if (!live_) return;
  live_->Close();
  // A client that was here a moment ago may be reconnecting: give it a second to come back
  // for the last events and `end`.
  if (!live_->WatchedWithin(std::chrono::seconds(5))) return;
  if (!live_->watching()) std::this_thread::sleep_for(std::chrono::seconds(1));
  // Their writers run at low priority: on a machine busy with other work they may need a
  // while for the rest. A client that stopped reading is dropped within 2 s anyway.
  auto wait = std::chrono::milliseconds(
      std::clamp<int64_t>(config_.pipeline.shutdown_timeout / 4, 2000, 10000));
  if (const int64_t at = stop_requested_ns_.load(); at != 0) {  // within shutdown_timeout
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        Clock::time_point(Clock::duration(at)) +
        std::chrono::milliseconds(config_.pipeline.shutdown_timeout) - Clock::now());
    wait = std::clamp(left - std::chrono::milliseconds(500), std::chrono::milliseconds(0), wait);
  }
  if (!live_->WaitForClients(wait)) {
    Log(LogLevel::kWarn, "live", "live view clients still connected at exit; closing them");
  }
}

}  // namespace turnstiled::ingest
