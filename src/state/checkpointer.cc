#include "state/checkpointer.h"

#include "base/log.h"
#include "base/thread_name.h"
#include "state/snapshot.h"

namespace turnstiled::state {

using base::Log;
using base::LogLevel;
using Clock = std::chrono::steady_clock;

base::Result<std::unique_ptr<Checkpointer>> Checkpointer::Create(const CheckpointerOptions& options,
                                                                 AckTracker acks,
                                                                 metrics::StateMetrics* metrics) {
  std::unique_ptr<Checkpointer> c(new Checkpointer(options, std::move(acks), metrics));
  base::Status s = c->local_.Open();
  if (!s.ok()) {
    return base::Status::InvalidArgument("state.dir '" + options.dir +
                                         "' cannot be written: " + s.message());
  }
  if (!options.changelog_topic.empty()) {
    c->changelog_ = std::make_unique<Changelog>(options.bootstrap, options.changelog_topic,
                                                options.properties, options.partitions_hint);
    s = c->changelog_->Open();
    if (!s.ok()) return s;
  }
  return c;
}

Checkpointer::Checkpointer(const CheckpointerOptions& options, AckTracker acks,
                           metrics::StateMetrics* metrics)
    : options_(options),
      acks_(std::move(acks)),
      metrics_(metrics),
      local_(options.dir, options.group) {}

Checkpointer::~Checkpointer() { Stop(); }

void Checkpointer::Start() {
  thread_ = std::thread([this] { Run(); });
}

void Checkpointer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_.store(true);
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

base::Result<std::optional<window::PartitionState>> Checkpointer::Restore(const std::string& topic,
                                                                          int32_t partition) {
  std::optional<window::PartitionState> s = local_.Load(topic, partition);
  const char* from = "local";
  if (changelog_) {
    // The changelog too: another instance may have held the partition since this one last
    // wrote it, and its newer snapshot wins. Could not read is not "none": the caller retries.
    auto loaded = changelog_->Load(topic, partition, 30000);
    if (!loaded.ok()) {
      Log(LogLevel::kError, "state", "changelog could not be read",
          {{"topic", topic},
           {"partition", std::to_string(partition)},
           {"error", loaded.status().message()}});
      return loaded.status();
    }
    if (loaded->has_value() && (!s || (*loaded)->next_offset > s->next_offset)) {
      s = std::move(*loaded);
      from = "changelog";
    }
  }
  if (!s) {
    Log(LogLevel::kInfo, "state",
        "no snapshot: the partition starts from its committed offset with fresh baselines",
        {{"topic", topic}, {"partition", std::to_string(partition)}});
    if (metrics_ != nullptr) metrics_->restores_none->Increment();
    return std::optional<window::PartitionState>();
  }
  Log(LogLevel::kInfo, "state", "partition restored",
      {{"topic", topic},
       {"partition", std::to_string(partition)},
       {"from", from},
       {"offset", std::to_string(s->next_offset)},
       {"devices", std::to_string(s->devices.size())},
       {"windows", std::to_string(s->windows.size())}});
  if (metrics_ != nullptr) {
    (std::string(from) == "local" ? metrics_->restores_local : metrics_->restores_changelog)
        ->Increment();
  }
  {
    std::lock_guard<std::mutex> lock(persist_mu_);
    int64_t& stored = stored_[{topic, partition}];
    stored = std::max(stored, s->next_offset);
  }
  return s;
}

void Checkpointer::Submit(std::vector<window::PartitionState> states, uint64_t seq,
                          CommitFn commit) {
  std::lock_guard<std::mutex> lock(mu_);
  queue_.push_back({std::move(states), seq, std::move(commit), Clock::now()});
  cv_.notify_all();
}

bool Checkpointer::WaitAcked(uint64_t seq, Clock::time_point deadline, bool stop_aware) {
  if (acks_.acked() < seq) {
    acks_.request_flush();
    while (acks_.acked() < seq) {
      if (Clock::now() >= deadline || (stop_aware && stopping_.load())) return false;
      if (acks_.failed && acks_.failed()) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  if (acks_.flush_dead_letter) {
    const base::Status s = acks_.flush_dead_letter();
    if (!s.ok()) {
      Log(LogLevel::kWarn, "state", "dead letter not durable; checkpoint skipped",
          {{"error", s.ToString()}});
      return false;
    }
  }
  return true;
}

base::Result<std::vector<Committed>> Checkpointer::Checkpoint(
    const std::vector<window::PartitionState>& states, uint64_t seq, Clock::time_point deadline) {
  const auto cut = Clock::now();
  if (!WaitAcked(seq, deadline, /*stop_aware=*/false)) {
    if (metrics_ != nullptr) metrics_->checkpoints_skipped->Increment();
    return base::Status::Unavailable(
        "the sinks did not acknowledge the rows before the cut in time; state not stored, "
        "offsets not committed");
  }
  return Persist(states, cut);
}

base::Result<std::vector<Committed>> Checkpointer::Persist(
    const std::vector<window::PartitionState>& states, Clock::time_point cut) {
  std::lock_guard<std::mutex> lock(persist_mu_);
  std::vector<const window::PartitionState*> fresh;
  for (const auto& s : states) {
    auto it = stored_.find({s.topic, s.partition});
    if (s.next_offset < 0 || (it != stored_.end() && s.next_offset <= it->second)) continue;
    fresh.push_back(&s);
  }
  std::vector<std::string> encoded;
  encoded.reserve(fresh.size());
  size_t bytes = 0;
  for (const auto* s : fresh) {
    encoded.push_back(EncodeSnapshot(*s));
    bytes += encoded.back().size();
  }
  base::Status result;
  for (size_t i = 0; i < fresh.size() && result.ok(); ++i) {
    result = local_.Write(fresh[i]->topic, fresh[i]->partition, encoded[i]);
  }
  if (result.ok() && changelog_ && !fresh.empty()) {
    std::vector<Changelog::Entry> entries;
    for (size_t i = 0; i < fresh.size(); ++i) {
      entries.push_back({fresh[i]->topic, fresh[i]->partition, &encoded[i]});
    }
    result = changelog_->Write(entries, 30000);
  }
  if (!result.ok()) {
    if (metrics_ != nullptr) metrics_->checkpoints_failed->Increment();
    Log(LogLevel::kError, "state", "checkpoint failed; offsets not committed",
        {{"error", result.ToString()}});
    return result;
  }
  Log(LogLevel::kDebug, "state", "checkpoint stored",
      {{"partitions", std::to_string(fresh.size())},
       {"bytes", std::to_string(bytes)},
       {"ms",
        std::to_string(
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - cut).count())}});
  std::vector<Committed> stored;
  for (const auto* s : fresh) {
    stored_[{s->topic, s->partition}] = s->next_offset;
    stored.push_back({s->topic, s->partition, s->next_offset});
  }
  if (metrics_ != nullptr) {
    metrics_->checkpoints_ok->Increment();
    metrics_->checkpoint_duration->Observe(
        std::chrono::duration<double>(Clock::now() - cut).count());
    metrics_->last_checkpoint->Set(
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count());
    if (!fresh.empty()) metrics_->checkpoint_bytes->Set(static_cast<double>(bytes));
  }
  return stored;
}

void Checkpointer::Run() {
  base::NameThisThread("checkpoint");
  auto next = Clock::now() + options_.interval;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_.load()) {
    if (queue_.empty()) {
      cv_.wait_until(lock, next, [&] { return stopping_.load() || !queue_.empty(); });
      if (Clock::now() >= next) {
        epoch_.fetch_add(1, std::memory_order_relaxed);
        next = Clock::now() + options_.interval;
      }
      continue;
    }
    Pending p = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    // A checkpoint may wait for the sinks up to a few intervals; past that a newer one will
    // have been taken.
    const auto deadline =
        Clock::now() + std::max(options_.interval * 3, std::chrono::milliseconds(10000));
    const bool ok = WaitAcked(p.seq, deadline, /*stop_aware=*/true);
    std::vector<Committed> committed;
    if (!ok) {
      if (metrics_ != nullptr && !stopping_.load()) metrics_->checkpoints_skipped->Increment();
    } else {
      auto stored = Persist(p.states, p.cut);
      if (stored.ok()) committed = std::move(stored).value();
    }
    // Always called: the source starts its next checkpoint only after this one is done.
    if (p.commit) p.commit(committed);
    lock.lock();
    if (Clock::now() >= next) {
      epoch_.fetch_add(1, std::memory_order_relaxed);
      next = Clock::now() + options_.interval;
    }
  }
}

}  // namespace turnstiled::state
