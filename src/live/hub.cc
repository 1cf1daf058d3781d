#include "live/hub.h"

#include <algorithm>
#include <cstdio>

#include "base/civil_time.h"
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
  }
}

bool Hub::Recording() const { return WatchedWithin(options_.keep_after_last_client); }

void Hub::Publish(Kind kind, const std::vector<window::WindowRow>& rows) {
  if (rows.empty() || !Recording()) return;
  // Encode outside the lock; the lock covers only the copies into the ring's slots.
  thread_local std::string json;
  thread_local std::vector<size_t> ends;
  json.clear();
  ends.clear();
  for (const auto& row : rows) {
    if (kind == Kind::kClose && !row.final) continue;  // emit: update rows are not closes
    AppendRowJson(row, &json);
    ends.push_back(json.size());
  }
  const std::string_view header =
      kind == Kind::kUpdate ? "\nevent: update\ndata: " : "\nevent: close\ndata: ";
  {
    // Publishers take turns (publish_mu_), so the ids they write are theirs; readers wait only
    // for the slots to be swapped in (mu_), never for the frames to be written.
    std::lock_guard<std::mutex> publishing(publish_mu_);
    uint64_t id;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closed_) return;
      id = next_id_;
    }
    auto block = std::make_shared<std::string>();
    block->reserve(json.size() + ends.size() * 48);
    thread_local std::vector<uint32_t> starts;
    starts.clear();
    size_t begin = 0;
    char text[24];
    for (size_t end : ends) {
      starts.push_back(static_cast<uint32_t>(block->size()));
      const int n = std::snprintf(text, sizeof text, "%llu",
                                  static_cast<unsigned long long>(id + starts.size() - 1));
      block->append("id: ").append(text, static_cast<size_t>(n)).append(header);
      block->append(json, begin, end - begin).append("\n\n");
      begin = end;
    }
    std::shared_ptr<const std::string> frames = std::move(block);
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < starts.size(); ++i) {
      Slot& slot = ring_[(next_id_ - first_id_) % ring_.size()];
      slot.block = frames;
      slot.begin = starts[i];
      slot.end = i + 1 < starts.size() ? starts[i + 1] : static_cast<uint32_t>(frames->size());
      ++next_id_;
    }
  }
  cv_.notify_all();
  prometheus::Counter* c = kind == Kind::kUpdate ? events_update_ : events_close_;
  if (c != nullptr) c->Increment(static_cast<double>(ends.size()));
}

void Hub::Close() {
  {
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

Hub::PullResult Hub::Pull(uint64_t* cursor, std::vector<Frames>* out, size_t max_bytes,
                          std::chrono::milliseconds wait, uint64_t* first_id) {
  std::unique_lock<std::mutex> lock(mu_);
  if (*cursor >= next_id_ - 1) {
    cv_.wait_for(lock, wait, [&] { return closed_ || *cursor < next_id_ - 1; });
  }
  const uint64_t first = FirstIdLocked();
  if (*cursor + 1 < first) {
    if (first_id != nullptr) *first_id = first;
    return PullResult::kGap;
  }
  if (*cursor >= next_id_ - 1) return closed_ ? PullResult::kEnded : PullResult::kTimeout;
  size_t bytes = 0;
  while (*cursor < next_id_ - 1 && bytes < max_bytes) {
    ++*cursor;
    const Slot& slot = ring_[(*cursor - first_id_) % ring_.size()];
    if (!out->empty() && out->back().block == slot.block && out->back().end == slot.begin) {
      out->back().end = slot.end;  // the next frame of the same publish
    } else {
      out->push_back(slot);
    }
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
