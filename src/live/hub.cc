#include "live/hub.h"

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "base/civil_time.h"
#include "base/thread_name.h"
#include "sink/row_format.h"

namespace turnstiled::live {

using Clock = std::chrono::steady_clock;

namespace {

int64_t NowNs() { return Clock::now().time_since_epoch().count(); }

// The row as the file sink's jsonl writes it, plus "source".
void AppendRowJson(const window::WindowRow& row, std::string* out) {
  const size_t at = out->size();
  sink::AppendJsonRow(row, out);
  // AppendJsonRow ends with "}\n": reopen the object for one more key.
  while (out->size() > at && (out->back() == '\n' || out->back() == '}')) {
    const bool brace = out->back() == '}';
    out->pop_back();
    if (brace) break;
  }
  out->append(",\"source\":");
  sink::AppendJsonString(row.source, out);
  out->push_back('}');
}

}  // namespace

#ifndef TURNSTILED_VERSION
#define TURNSTILED_VERSION "0.0.0"
#endif

void RunAtIdlePriority() {
  sched_param none{};
  if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &none) != 0) {
    ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 19);
  }
}

uint64_t FirstId(uint64_t given) {
  if (given != 0) return given;
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

Hub::Hub(HubOptions options, prometheus::Registry* registry, std::function<Stats()> stats)
    : options_(std::move(options)),
      stats_(std::move(stats)),
      first_id_(FirstId(options_.first_id)),
      next_id_(first_id_) {
  ring_.resize(std::max<size_t>(1, options_.buffer_events));
  if (registry != nullptr) {
    clients_gauge_ = &prometheus::BuildGauge()
                          .Name("turnstiled_live_clients")
                          .Help("Clients connected to /events (the live view)")
                          .Register(*registry)
                          .Add({});
    auto& events = prometheus::BuildCounter()
                       .Name("turnstiled_live_events_total")
                       .Help("Events put in the live view's ring, by type")
                       .Register(*registry);
    events_update_ = &events.Add({{"type", "update"}});
    events_close_ = &events.Add({{"type", "close"}});
    auto& dropped = prometheus::BuildCounter()
                        .Name("turnstiled_live_clients_dropped_total")
                        .Help("Live view clients disconnected by the daemon, by reason")
                        .Register(*registry);
    dropped_slow_ = &dropped.Add({{"reason", "slow"}});
    refused_ = &prometheus::BuildCounter()
                    .Name("turnstiled_live_clients_refused_total")
                    .Help("Live view clients refused with 503: live.max_clients were connected")
                    .Register(*registry)
                    .Add({});
    gaps_ = &prometheus::BuildCounter()
                 .Name("turnstiled_live_gaps_total")
                 .Help("Gap events sent: a live view client missed events that left the ring")
                 .Register(*registry)
                 .Add({});
    skipped_ = &prometheus::BuildCounter()
                    .Name("turnstiled_live_events_skipped_total")
                    .Help(
                        "Live view events never encoded: more waited for the encoder than "
                        "live.buffer_events while the pipeline kept the machine busy")
                    .Register(*registry)
                    .Add({});
  }
  if (options_.encoder_thread) encoder_ = std::thread([this] { EncoderLoop(); });
}

Hub::~Hub() {
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    stop_ = true;
  }
  queue_cv_.notify_all();
  if (encoder_.joinable()) encoder_.join();
}

bool Hub::Recording() const { return WatchedWithin(options_.keep_after_last_client); }

void Hub::Publish(Kind kind, Rows rows) {
  if (rows == nullptr || rows->empty() || !Recording()) return;
  size_t events = rows->size();
  if (kind == Kind::kClose) {  // emit: update rows are not closes
    events = static_cast<size_t>(
        std::count_if(rows->begin(), rows->end(), [](const auto& r) { return r.final; }));
  }
  if (events == 0) return;
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    if (closing_) return;
    queue_.push_back({kind, std::move(rows), events});
    queued_events_ += events;
    // More waits than the ring holds: the oldest would have left the ring before a client
    // read them. They get ids, and no frames (a gap), when the encoder comes to them.
    while (queued_events_ > ring_.size() && queue_.size() > 1) {
      skipped_events_ += queue_.front().events;
      queued_events_ -= queue_.front().events;
      queue_.pop_front();
    }
  }
  queue_cv_.notify_one();
}

void Hub::EncoderLoop() {
  base::NameThisThread("live-encoder");
  RunAtIdlePriority();
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(queue_mu_);
      queue_cv_.wait(lock, [this] { return stop_ || !queue_.empty() || skipped_events_ > 0; });
      if (queue_.empty() && skipped_events_ == 0) return;  // stop_
    }
    std::lock_guard<std::mutex> publishing(publish_mu_);
    EncodeNext();  // Sync() or Close() may have taken it meanwhile
  }
}

void Hub::Sync() {
  std::lock_guard<std::mutex> publishing(publish_mu_);
  while (EncodeNext()) {
  }
}

bool Hub::EncodeOne() {
  std::lock_guard<std::mutex> publishing(publish_mu_);
  return EncodeNext();
}

bool Hub::EncodeNext() {
  Batch batch{Kind::kUpdate, nullptr, 0};
  uint64_t skipped = 0;
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    skipped = skipped_events_;
    skipped_events_ = 0;
    if (!queue_.empty()) {
      batch = std::move(queue_.front());
      queue_.pop_front();
      queued_events_ -= batch.events;
    }
  }
  if (skipped == 0 && batch.rows == nullptr) return false;
  json_.clear();
  ends_.clear();
  if (batch.rows != nullptr) {
    for (const auto& row : *batch.rows) {
      if (batch.kind == Kind::kClose && !row.final) continue;
      AppendRowJson(row, &json_);
      ends_.push_back(json_.size());
    }
  }
  uint64_t id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Ids for the skipped events: empty slots, which readers report as a gap.
    const uint64_t empty = std::min<uint64_t>(skipped, ring_.size());
    next_id_ += skipped - empty;
    for (uint64_t i = 0; i < empty; ++i) {
      ring_[(next_id_ - first_id_) % ring_.size()] = Slot{};
      ++next_id_;
    }
    id = next_id_;
  }
  if (skipped > 0 && skipped_ != nullptr) skipped_->Increment(static_cast<double>(skipped));
  if (ends_.empty()) {
    cv_.notify_all();
    return true;
  }
  const std::string_view header =
      batch.kind == Kind::kUpdate ? "\nevent: update\ndata: " : "\nevent: close\ndata: ";
  // Only this thread writes ids (publish_mu_): the frames are made outside mu_, so readers
  // wait only for the slots to be swapped in.
  auto block = std::make_shared<std::string>();
  block->reserve(json_.size() + ends_.size() * 48);
  starts_.clear();
  size_t begin = 0;
  char text[24];
  for (size_t end : ends_) {
    starts_.push_back(static_cast<uint32_t>(block->size()));
    const int n = std::snprintf(text, sizeof text, "%llu",
                                static_cast<unsigned long long>(id + starts_.size() - 1));
    block->append("id: ").append(text, static_cast<size_t>(n)).append(header);
    block->append(json_, begin, end - begin).append("\n\n");
    begin = end;
  }
  std::shared_ptr<const std::string> frames = std::move(block);
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < starts_.size(); ++i) {
      Slot& slot = ring_[(next_id_ - first_id_) % ring_.size()];
      slot.block = frames;
      slot.begin = starts_[i];
      slot.end = i + 1 < starts_.size() ? starts_[i + 1] : static_cast<uint32_t>(frames->size());
      ++next_id_;
    }
  }
  cv_.notify_all();
  prometheus::Counter* c = batch.kind == Kind::kUpdate ? events_update_ : events_close_;
  if (c != nullptr) c->Increment(static_cast<double>(ends_.size()));
  return true;
}

void Hub::Close() {
  {
    std::lock_guard<std::mutex> publishing(publish_mu_);
    {
      std::lock_guard<std::mutex> lock(queue_mu_);
      closing_ = true;
    }
    while (EncodeNext()) {
    }
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    closed_flag_.store(true);
  }
  cv_.notify_all();
}

bool Hub::WaitForClients(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return left_cv_.wait_for(lock, timeout, [this] { return clients_.load() == 0; });
}

Hub::Admit Hub::Join(uint64_t* cursor) {
  std::lock_guard<std::mutex> lock(mu_);
  if (clients_.load() >= options_.max_clients) {
    if (refused_ != nullptr) refused_->Increment();
    return Admit::kFull;
  }
  *cursor = next_id_ - 1;
  clients_.fetch_add(1);
  generation_.fetch_add(1);
  if (clients_gauge_ != nullptr) clients_gauge_->Increment();
  return Admit::kOk;
}

bool Hub::WatchedWithin(std::chrono::milliseconds within) const {
  if (watching()) return true;
  const int64_t left = last_left_ns_.load();
  return left != 0 &&
         NowNs() - left < std::chrono::duration_cast<std::chrono::nanoseconds>(within).count();
}

void Hub::Leave(bool slow) {
  last_left_ns_.store(NowNs());
  {
    std::lock_guard<std::mutex> lock(mu_);
    clients_.fetch_sub(1);
  }
  left_cv_.notify_all();
  if (clients_gauge_ != nullptr) clients_gauge_->Decrement();
  if (slow && dropped_slow_ != nullptr) dropped_slow_->Increment();
}

uint64_t Hub::last_id() const {
  std::lock_guard<std::mutex> lock(mu_);
  return next_id_ - 1;
}

uint64_t Hub::FirstIdLocked() const {
  return next_id_ - first_id_ > ring_.size() ? next_id_ - ring_.size() : first_id_;
}

uint64_t Hub::NextKeptLocked(uint64_t id) const {
  while (id < next_id_ && ring_[(id - first_id_) % ring_.size()].block == nullptr) ++id;
  return id;
}

Hub::PullResult Hub::Pull(uint64_t* cursor, std::vector<Frames>* out, size_t max_bytes,
                          std::chrono::milliseconds wait, uint64_t* first_id) {
  std::unique_lock<std::mutex> lock(mu_);
  if (*cursor >= next_id_ - 1) {
    cv_.wait_for(lock, wait, [&] { return closed_ || *cursor < next_id_ - 1; });
  }
  if (*cursor + 1 < FirstIdLocked()) {
    // Skipped events next to the oldest kept: the gap covers them too.
    if (first_id != nullptr) *first_id = NextKeptLocked(FirstIdLocked());
    return PullResult::kGap;
  }
  if (*cursor >= next_id_ - 1) return closed_ ? PullResult::kEnded : PullResult::kTimeout;
  size_t bytes = 0;
  bool appended = false;
  while (*cursor < next_id_ - 1 && bytes < max_bytes) {
    const Slot& slot = ring_[(*cursor + 1 - first_id_) % ring_.size()];
    if (slot.block == nullptr) {  // skipped events
      if (appended) break;        // what came before them first; the gap next time
      if (first_id != nullptr) *first_id = NextKeptLocked(*cursor + 1);
      return PullResult::kGap;
    }
    ++*cursor;
    if (!out->empty() && out->back().block == slot.block && out->back().end == slot.begin) {
      out->back().end = slot.end;  // the next frame of the same batch
    } else {
      out->push_back(slot);
    }
    appended = true;
    bytes += slot.end - slot.begin;
  }
  return PullResult::kEvents;
}

std::string Hub::HelloFrame(uint64_t after) const {
  std::string s = "retry: 2000\nevent: hello\ndata: {\"version\":";
  sink::AppendJsonString(options_.version.empty() ? TURNSTILED_VERSION : options_.version, &s);
  s += ",\"window\":" + options_.window_json;
  s += ",\"coalesce_ms\":" + std::to_string(options_.coalesce.count());
  s += ",\"heartbeat_ms\":" + std::to_string(options_.heartbeat.count());
  s += ",\"last_id\":" + std::to_string(after) + "}\n\n";
  return s;
}

std::string Hub::HeartbeatFrame() {
  const Stats st = stats_ ? stats_() : Stats{};
  double rate = 0;
  {
    std::lock_guard<std::mutex> lock(rate_mu_);
    const auto now = Clock::now();
    const double dt = std::chrono::duration<double>(now - rate_at_).count();
    if (rate_at_ == Clock::time_point{}) {
      rate_at_ = now;
      rate_records_ = st.records;
    } else if (dt >= 0.5) {
      rate_ =
          st.records >= rate_records_ ? static_cast<double>(st.records - rate_records_) / dt : 0.0;
      rate_at_ = now;
      rate_records_ = st.records;
    }
    rate = rate_;
  }
  std::string s = "event: heartbeat\ndata: {\"time\":\"";
  base::AppendIsoUtc(std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count(),
                     &s);
  s += "\",\"watermark\":";
  if (st.watermark_ms > 0) {
    s += '"';
    base::AppendIsoUtc(st.watermark_ms, &s);
    s += '"';
  } else {
    s += "null";
  }
  s += ",\"lag\":";
  s += st.has_lag ? std::to_string(static_cast<uint64_t>(st.lag)) : std::string("null");
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f", rate);
  s += ",\"records\":" + std::to_string(st.records) + ",\"records_per_second\":" + buf +
       ",\"open_windows\":" + std::to_string(st.open_windows) +
       ",\"clients\":" + std::to_string(clients_.load()) + "}\n\n";
  return s;
}

std::string Hub::GapFrame(uint64_t after, uint64_t first_id) {
  return "event: gap\ndata: {\"after\":" + std::to_string(after) +
         ",\"first_id\":" + std::to_string(first_id) + "}\n\n";
}

}  // namespace turnstiled::live
