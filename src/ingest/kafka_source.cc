#include "ingest/kafka_source.h"

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <latch>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "base/log.h"
#include "sink/kafka_poll.h"

namespace turnstiled::ingest {

namespace {

using base::Log;
using base::LogLevel;
using Clock = std::chrono::steady_clock;
using TopicPartition = std::pair<std::string, int32_t>;

constexpr size_t kPollBatch = 2048;
constexpr std::chrono::milliseconds kPollTimeout{100};
// How long the shards may stay behind before fetching is paused (see Backpressure()).
constexpr std::chrono::milliseconds kPauseAfter{500};
constexpr int kRestoreAttempts = 3;

// What the consumer threads of one process share.
struct GroupState {
  // --available-now: end offsets seen at start. Constant after construction.
  std::map<TopicPartition, int64_t> targets;
  int total = 0;
  // Partitions read up to their target. A set, not a count: after a rebalance the same
  // partition may reach its target again in another consumer.
  std::atomic<int> done{0};
  std::atomic<int> assigned{0};         // partitions held by this process's consumers
  std::set<TopicPartition> done_parts;  // guarded by mu

  std::mutex mu;

  bool AllDone() const { return done.load() >= total; }
};

struct Partition {
  std::string topic;
  int32_t partition = 0;
  int32_t slot = 0;
  rd_kafka_topic_t* rkt = nullptr;  // set from the first message; stable per handle
  int64_t next_offset = -1;         // -1: nothing consumed yet
  int64_t target = -1;              // --available-now end offset
  // Read to the end the broker reported (a partition EOF since the last message). Only such a
  // partition can be idle: one with records still to fetch is behind, however long it has been
  // since its last record (a starved consumer thread, a slow fetch).
  bool at_end = false;
  PartitionClock clock;
  prometheus::Gauge* watermark_gauge = nullptr;
  prometheus::Gauge* lag_gauge = nullptr;
};

// librdkafka's own log lines, as structured lines of ours. Called from librdkafka's threads;
// base::Log is safe there.
void OnKafkaLog(const rd_kafka_t*, int level, const char* facility, const char* text) {
  base::LogLibraryLine(base::FromSyslogLevel(level), "kafka", facility, text);
}

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

rd_kafka_conf_t* BaseConf(const config::KafkaSourceConfig& k, std::string* err) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set_log_cb(conf, &OnKafkaLog);
  char errstr[512];
  auto set = [&](const std::string& key, const std::string& value) {
    if (!err->empty()) return;
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK) {
      *err = "source.kafka: " + key + ": " + errstr;
    }
  };
  set("bootstrap.servers", k.bootstrap_servers);
  set("group.id", k.group_id);
  set("enable.auto.commit", "false");
  set("enable.auto.offset.store", "false");
  set("auto.offset.reset",
      k.start_offset == config::StartOffset::kEarliest ? "earliest" : "latest");
  // Throughput defaults; every one can be overridden through properties.
  set("fetch.wait.max.ms", "100");
  set("fetch.min.bytes", "1");
  set("queued.min.messages", "200000");
  // Prefetch per consumer: enough for full speed, and a known part of the memory bound.
  set("queued.max.messages.kbytes", "16384");
  set("fetch.max.bytes", "16777216");
  set("max.partition.fetch.bytes", "4194304");
  set("client.id", "turnstiled");
  for (const auto& [key, value] : k.properties) set(key, value);
  // Not overridable: idle detection and --available-now need to know when a partition has been
  // read to its end.
  set("enable.partition.eof", "true");
  return conf;
}

class KafkaSource : public Source {
 public:
  KafkaSource(const IngestContext& ctx, int index, std::shared_ptr<GroupState> group,
              bool available_now, std::unique_ptr<Ingestor> ingestor)
      : ctx_(ctx),
        index_(index),
        group_(std::move(group)),
        available_now_(available_now),
        idle_timeout_(std::chrono::milliseconds(ctx.config->window.idle_timeout)),
        ingestor_(std::move(ingestor)) {}

  ~KafkaSource() override { Close(); }

  base::Status Open() {
    std::string err;
    rd_kafka_conf_t* conf = BaseConf(ctx_.config->source.kafka, &err);
    if (!err.empty()) {
      rd_kafka_conf_destroy(conf);
      return base::Status::InvalidArgument(err);
    }
    rd_kafka_conf_set_opaque(conf, this);
    rd_kafka_conf_set_rebalance_cb(conf, &KafkaSource::RebalanceThunk);
    char errstr[512];
    rk_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (rk_ == nullptr)
      return base::Status::InvalidArgument(std::string("kafka consumer: ") + errstr);
    rd_kafka_poll_set_consumer(rk_);
    queue_ = rd_kafka_queue_get_consumer(rk_);
    rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(
        static_cast<int>(ctx_.config->source.kafka.topics.size()));
    for (const auto& t : ctx_.config->source.kafka.topics) {
      rd_kafka_topic_partition_list_add(topics, t.c_str(), RD_KAFKA_PARTITION_UA);
    }
    const rd_kafka_resp_err_t rc = rd_kafka_subscribe(rk_, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return base::Status::Unavailable(std::string("subscribe: ") + rd_kafka_err2str(rc));
    }
    return base::Status::Ok();
  }

  Router& router() override { return ingestor_->router(); }

  std::string NotReadyReason() const override {
    // Consumer 0 speaks for the process: ready once any consumer holds a partition (others may
    // hold none when there are more consumers than partitions).
    if (index_ == 0 && group_->assigned.load() == 0 && !(available_now_ && group_->AllDone()))
      return "no partitions assigned (is the broker reachable?)";
    return "";
  }

  void Run(const std::atomic<bool>& stop) override {
    std::vector<rd_kafka_message_t*> msgs(kPollBatch);
    auto last_lag = Clock::now();
    while (!stop.load(std::memory_order_relaxed)) {
      if (available_now_ && group_->AllDone()) break;
      Beat();
      Backpressure(stop);
      // Polling goes on while paused: it keeps this member in the group (max.poll.interval.ms)
      // and serves rebalances; paused partitions deliver nothing.
      // What has arrived, up to kPollBatch, waiting only while nothing has (sink/kafka_poll.h).
      const ssize_t n = sink::TakeMessages(queue_, static_cast<int>(kPollTimeout.count()), &msgs);
      const auto now = Clock::now();
      // Behind: paused, a full batch (more is waiting), or back from a long gap between polls
      // (a frozen or starved process, whose fetcher was frozen too). Then a partition's last
      // end-of-partition may be stale: records may have come since that nobody fetched yet.
      if (paused_ || static_cast<size_t>(n) >= msgs.size() ||
          now - last_poll_ > kPollTimeout + idle_timeout_ / 4) {
        behind_at_ = now;
      }
      last_poll_ = now;
      ingestor_->SetNow(WallMs());
      for (ssize_t i = 0; i < n; ++i) HandleMessage(msgs[static_cast<size_t>(i)], now);
      // While paused, nothing that could wait for a batch: the progress and the checkpoint
      // go out once the shards have caught up.
      if (!paused_ || n > 0) router().Flush(Progress(now));
      ingestor_->PublishMetrics();
      if (!paused_) MaybeCheckpoint(now);
      if (now - last_lag > std::chrono::seconds(1)) {
        PublishLag();
        last_lag = now;
      }
    }
    const bool finished = available_now_ && group_->AllDone();
    // Wait until the shards have everything, so a stop's commit covers only processed records.
    // A stopped source says nothing more about event time (kNoTime, idle), so it neither holds
    // the other sources back nor moves any watermark on its way out.
    router().Quiesce(finished ? window::SourceProgress{window::kEndOfTime, false, true}
                              : window::SourceProgress{window::kNoTime, true, false});
    ingestor_->PublishMetrics();
    // A stop (not the end of --available-now): store the open windows and baselines, and
    // commit the offsets they cover, so the next start resumes exactly here.
    if (!finished && ctx_.checkpointer != nullptr && !parts_.empty() && !restore_failed_) {
      stop_status_ = CheckpointNow(/*drop=*/false, StopDeadline());
      stop_checkpointed_ = true;
    }
  }

  base::Status Commit() override {
    if (rk_ == nullptr) return base::Status::Ok();
    // After a stop the checkpoint committed what it covered; its result is the answer.
    if (stop_checkpointed_) return stop_status_;
    std::vector<state::Committed> offsets;
    for (const auto& p : parts_) {
      if (p->next_offset >= 0) offsets.push_back({p->topic, p->partition, p->next_offset});
    }
    const base::Status s = CommitOffsets(offsets);
    if (s.ok() && !offsets.empty()) {
      Log(LogLevel::kInfo, "kafka", "offsets committed",
          {{"consumer", std::to_string(index_)}, {"partitions", std::to_string(offsets.size())}});
    }
    return s;
  }

  void Close() override {
    if (rk_ == nullptr) return;
    closing_ = true;
    if (queue_ != nullptr) rd_kafka_queue_destroy(queue_);
    queue_ = nullptr;
    rd_kafka_consumer_close(rk_);
    rd_kafka_destroy(rk_);
    rk_ = nullptr;
  }

 private:
  static void RebalanceThunk(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t* parts, void* opaque) {
    static_cast<KafkaSource*>(opaque)->Rebalance(rk, err, parts);
  }

  void Rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts) {
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      Assign(rk, parts);
    } else {
      Revoke(rk);
    }
  }

  void Assign(rd_kafka_t* rk, rd_kafka_topic_partition_list_t* parts) {
    std::vector<std::shared_ptr<window::ShardControl>> restores;
    // Restore before taking any lock: reading a changelog partition can take a while.
    std::map<TopicPartition, std::optional<window::PartitionState>> restored_states;
    if (ctx_.checkpointer != nullptr) {
      for (int i = 0; i < parts->cnt; ++i) {
        const TopicPartition key{parts->elems[i].topic, parts->elems[i].partition};
        restored_states[key] = RestoreOrFail(key);
      }
    }
    const auto now = Clock::now();
    {
      std::lock_guard<std::mutex> lock(group_->mu);
      for (int i = 0; i < parts->cnt; ++i) {
        rd_kafka_topic_partition_t& tp = parts->elems[i];
        auto p = std::make_unique<Partition>();
        p->topic = tp.topic;
        p->partition = tp.partition;
        p->slot = ctx_.partitions->Slot(p->topic, p->partition);
        p->clock.last_data = now;
        const TopicPartition key{p->topic, p->partition};
        if (ctx_.checkpointer != nullptr) {
          std::optional<window::PartitionState>& restored = restored_states[key];
          if (restored) {
            tp.offset = restored->next_offset;
            p->next_offset = restored->next_offset;
            p->clock.high_ms = restored->high_ms;
            auto control = std::make_shared<window::ShardControl>();
            control->kind = window::ShardControl::Kind::kRestore;
            control->slots.push_back(p->slot);
            control->states.push_back(std::move(*restored));
            restores.push_back(std::move(control));
          }
        }
        if (auto it = group_->targets.find(key); it != group_->targets.end())
          p->target = it->second;
        if (ctx_.metrics != nullptr) {
          const std::map<std::string, std::string> labels{
              {"topic", p->topic}, {"partition", std::to_string(p->partition)}};
          p->watermark_gauge = &ctx_.metrics->partition_watermark->Add(labels);
          p->lag_gauge = &ctx_.metrics->consumer_lag->Add(labels);
        }
        parts_.push_back(std::move(p));
      }
    }
    // Where a group already committed at or past the end offset, the partition is done now.
    if (available_now_) {
      rd_kafka_topic_partition_list_t* committed = rd_kafka_topic_partition_list_copy(parts);
      if (rd_kafka_committed(rk, committed, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (int i = 0; i < committed->cnt; ++i) {
          Partition* p = Find(committed->elems[i].topic, committed->elems[i].partition);
          if (p != nullptr && p->next_offset < 0 && committed->elems[i].offset >= 0) {
            p->next_offset = committed->elems[i].offset;
          }
        }
      }
      rd_kafka_topic_partition_list_destroy(committed);
      // Empty, already committed, or handed over at its target by another consumer.
      for (auto& p : parts_) MaybeDone(p.get());
    }
    // The restored state reaches its shard before any record of the partition, together with
    // this source's progress that now includes the partition's clock.
    const window::SourceProgress progress = Progress(now);
    for (auto& c : restores) {
      const int32_t slot = c->slots[0];
      router().SendControl(slot, std::move(c), progress);
    }
    group_->assigned.fetch_add(static_cast<int>(parts_.size()) - assigned_.load());
    assigned_.store(static_cast<int>(parts_.size()));
    if (ctx_.metrics != nullptr) ctx_.metrics->assigned_partitions->Increment(parts->cnt);
    rd_kafka_assign(rk, parts);
    Log(LogLevel::kInfo, "kafka", "partitions assigned",
        {{"consumer", std::to_string(index_)}, {"count", std::to_string(parts->cnt)}});
  }

  // Pauses fetching when the shards (or the sinks behind them) fall behind, instead of
  // blocking this thread in the router, and resumes once they have caught up.
  //
  // A short hold-up (a burst of closing windows, a busy moment on a small machine) is waited out
  // here, without polling, for up to kPauseAfter: a pause makes librdkafka drop everything it
  // has fetched ahead (up to queued.max.messages.kbytes) and fetch it again on resume, which
  // turned a 100 ms hiccup into a second's delay. A sink that is down pauses at once.
  void Backpressure(const std::atomic<bool>& stop) {
    if (parts_.empty()) return;
    const auto sinks_stalled = [this] { return ctx_.sinks_stalled && ctx_.sinks_stalled(); };
    bool stalled = sinks_stalled();
    if (!paused_ && !stalled && router().Congested()) {
      const auto until = Clock::now() + kPauseAfter;
      while (router().Congested() && !stop.load(std::memory_order_relaxed) &&
             Clock::now() < until && !(stalled = sinks_stalled())) {
        Beat();
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
    if (!paused_ && (stalled || router().Congested())) {
      SetPaused(true, stalled ? "a sink is down" : "the shards or the sinks are behind");
    } else if (paused_ && !stalled && router().Relieved()) {
      SetPaused(false, "");
    }
  }

  void SetPaused(bool pause, const char* why) {
    rd_kafka_topic_partition_list_t* list =
        rd_kafka_topic_partition_list_new(static_cast<int>(parts_.size()));
    for (const auto& p : parts_)
      rd_kafka_topic_partition_list_add(list, p->topic.c_str(), p->partition);
    const rd_kafka_resp_err_t rc =
        pause ? rd_kafka_pause_partitions(rk_, list) : rd_kafka_resume_partitions(rk_, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
      Log(LogLevel::kWarn, "kafka", pause ? "pause failed" : "resume failed",
          {{"consumer", std::to_string(index_)}, {"error", rd_kafka_err2str(rc)}});
      return;
    }
    paused_ = pause;
    if (ctx_.metrics != nullptr) {
      const auto n = static_cast<double>(parts_.size());
      pause ? ctx_.metrics->paused_partitions->Increment(n)
            : ctx_.metrics->paused_partitions->Decrement(n);
    }
    if (pause) {
      Log(LogLevel::kInfo, "kafka", "fetching paused",
          {{"consumer", std::to_string(index_)},
           {"partitions", std::to_string(parts_.size())},
           {"reason", why}});
    } else {
      Log(LogLevel::kInfo, "kafka", "fetching resumed",
          {{"consumer", std::to_string(index_)}, {"partitions", std::to_string(parts_.size())}});
    }
  }

  void Revoke(rd_kafka_t* rk) {
    if (paused_) {
      // The next assignment starts unpaused; the loop pauses it again if need be.
      if (ctx_.metrics != nullptr)
        ctx_.metrics->paused_partitions->Decrement(static_cast<double>(parts_.size()));
      paused_ = false;
    }
    if (!closing_) {
      // Finish what was sent for these partitions before letting go of them.
      router().Quiesce(Progress(Clock::now()));
      if (ctx_.checkpointer != nullptr && !parts_.empty() && !restore_failed_) {
        // Store their state and commit, then forget it: another member restores it.
        const base::Status s = CheckpointNow(/*drop=*/true, RevokeDeadline());
        if (!s.ok()) {
          Log(LogLevel::kWarn, "kafka",
              "revoked partitions not checkpointed; their next owner resumes from the last "
              "checkpoint",
              {{"consumer", std::to_string(index_)}, {"error", s.ToString()}});
        }
      }
    }
    if (ctx_.metrics != nullptr)
      ctx_.metrics->assigned_partitions->Decrement(static_cast<double>(parts_.size()));
    Log(LogLevel::kInfo, "kafka", "partitions revoked",
        {{"consumer", std::to_string(index_)}, {"count", std::to_string(parts_.size())}});
    parts_.clear();
    last_ = nullptr;
    group_->assigned.fetch_sub(assigned_.load());
    assigned_.store(0);
    unassigned_since_ = Clock::now();
    rd_kafka_assign(rk, nullptr);
  }

  // A partition's snapshot. When the changelog cannot be read, starting the partition afresh
  // would lose its baselines and open windows, so the read is retried, and after that the run
  // stops with the error rather than count wrongly.
  std::optional<window::PartitionState> RestoreOrFail(const TopicPartition& key) {
    base::Status last;
    for (int attempt = 0; attempt < kRestoreAttempts; ++attempt) {
      auto r = ctx_.checkpointer->Restore(key.first, key.second);
      if (r.ok()) return std::move(r).value();
      last = r.status();
      if (ctx_.stop_requested_ns != nullptr && ctx_.stop_requested_ns->load() != 0) break;
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    // Nothing more is processed, checkpointed or committed by this source.
    restore_failed_ = true;
    stop_status_ =
        base::Status::Unavailable("cannot restore " + key.first + "/" + std::to_string(key.second) +
                                  " from the changelog: " + last.message());
    stop_checkpointed_ = true;
    if (ctx_.fail) ctx_.fail(stop_status_);
    return std::nullopt;
  }

  // The time a stopping source may still spend: most of shutdown_timeout from the stop request,
  // leaving the rest to the writers' last flush.
  Clock::time_point StopDeadline() const {
    const auto budget = std::chrono::milliseconds(
        std::max<int64_t>(500, ctx_.config->pipeline.shutdown_timeout * 7 / 10));
    int64_t at = ctx_.stop_requested_ns != nullptr ? ctx_.stop_requested_ns->load() : 0;
    if (at == 0) at = Clock::now().time_since_epoch().count();
    return Clock::time_point(Clock::duration(at)) + budget;
  }
  // A revoke blocks the group's rebalance: bounded by the interval and shutdown_timeout, and
  // by a stop's deadline when one was asked for.
  Clock::time_point RevokeDeadline() const {
    auto d =
        Clock::now() + std::chrono::milliseconds(std::max<int64_t>(
                           1000, std::min<int64_t>(ctx_.config->pipeline.shutdown_timeout,
                                                   ctx_.config->state.checkpoint_interval * 3)));
    if (ctx_.stop_requested_ns != nullptr && ctx_.stop_requested_ns->load() != 0)
      d = std::min(d, StopDeadline());
    return d;
  }

  // Asks each shard that holds some of this source's partitions for their state. `done` runs
  // on a shard thread once every shard has answered, with the states in partition order.
  void ExportState(bool drop, std::function<void(std::vector<window::PartitionState>)> done) {
    std::map<size_t, std::shared_ptr<window::ShardControl>> by_shard;
    for (const auto& p : parts_) {
      auto& c = by_shard[router().ShardOf(p->slot)];
      if (!c) {
        c = std::make_shared<window::ShardControl>();
        c->kind =
            drop ? window::ShardControl::Kind::kExportAndDrop : window::ShardControl::Kind::kExport;
      }
      c->slots.push_back(p->slot);
      window::PartitionState meta;
      meta.topic = p->topic;
      meta.partition = p->partition;
      meta.next_offset = p->next_offset;
      meta.high_ms = p->clock.high_ms;
      c->states.push_back(std::move(meta));
    }
    struct Gather {
      std::mutex mu;
      int remaining = 0;
      std::vector<window::PartitionState> states;
      std::function<void(std::vector<window::PartitionState>)> done;
    };
    auto g = std::make_shared<Gather>();
    g->remaining = static_cast<int>(by_shard.size());
    g->done = std::move(done);
    const window::SourceProgress progress = Progress(Clock::now());
    for (auto& [shard, c] : by_shard) {
      window::ShardControl* raw = c.get();
      c->done = [g, raw] {
        std::unique_lock<std::mutex> lock(g->mu);
        for (auto& st : raw->states) g->states.push_back(std::move(st));
        if (--g->remaining > 0) return;
        auto states = std::move(g->states);
        auto fn = std::move(g->done);
        lock.unlock();
        fn(std::move(states));
      };
      const int32_t slot = c->slots[0];
      router().SendControl(slot, std::move(c), progress);
    }
  }

  // Periodic checkpoint: export now, let the checkpointer wait for the sinks, store and commit.
  void MaybeCheckpoint(Clock::time_point) {
    if (ctx_.checkpointer == nullptr || parts_.empty() || checkpoint_in_flight_.load() ||
        restore_failed_) {
      return;
    }
    const uint64_t epoch = ctx_.checkpointer->epoch();
    if (epoch == handled_epoch_) return;
    handled_epoch_ = epoch;
    checkpoint_in_flight_.store(true);
    state::Checkpointer* cp = ctx_.checkpointer;
    ExportState(false, [this, cp](std::vector<window::PartitionState> states) {
      // On a shard thread: every row emitted before the cut has been submitted by now.
      cp->Submit(std::move(states), cp->Submitted(),
                 [this](const std::vector<state::Committed>& c) {
                   CommitOffsets(c);
                   checkpoint_in_flight_.store(false);
                 });
    });
  }

  // Revoke and stop: export, wait, store, commit, all before returning.
  base::Status CheckpointNow(bool drop, Clock::time_point deadline) {
    struct Wait {
      std::mutex mu;
      std::condition_variable cv;
      bool ready = false;
      std::vector<window::PartitionState> states;
      uint64_t seq = 0;
    };
    auto w = std::make_shared<Wait>();
    state::Checkpointer* cp = ctx_.checkpointer;
    ExportState(drop, [w, cp](std::vector<window::PartitionState> states) {
      std::lock_guard<std::mutex> lock(w->mu);
      w->states = std::move(states);
      w->seq = cp->Submitted();
      w->ready = true;
      w->cv.notify_all();
    });
    {
      std::unique_lock<std::mutex> lock(w->mu);
      // The shards answer within a batch's time unless they are blocked on a sink that is down.
      // A hand-over must wait for the answer whatever the time: the request also drops the
      // partitions' state, and must not run after another thread of this process is given
      // them (a stop's watchdog frees the shards in time). A stop's checkpoint gives up.
      if (drop) {
        w->cv.wait(lock, [&] { return w->ready; });
      } else if (!w->cv.wait_until(lock, deadline, [&] { return w->ready; })) {
        return base::Status::Unavailable("the shards did not export the state in time");
      }
    }
    auto stored = cp->Checkpoint(w->states, w->seq, deadline);
    if (!stored.ok()) return stored.status();
    const base::Status c = CommitOffsets(*stored);
    if (!c.ok() && drop) {
      // A group in the middle of a rebalance may refuse the commit. The snapshots are stored:
      // the next owner resumes from them whatever the committed offset says, and commits.
      Log(LogLevel::kInfo, "kafka",
          "checkpoint stored; the offset commit was refused during the rebalance and is left "
          "to the next owner",
          {{"consumer", std::to_string(index_)}, {"error", c.ToString()}});
      return {};
    }
    return c;
  }

  base::Status CommitOffsets(const std::vector<state::Committed>& committed) {
    if (committed.empty() || rk_ == nullptr) return {};
    rd_kafka_topic_partition_list_t* offsets =
        rd_kafka_topic_partition_list_new(static_cast<int>(committed.size()));
    for (const auto& c : committed) {
      rd_kafka_topic_partition_list_add(offsets, c.topic.c_str(), c.partition)->offset =
          c.next_offset;
    }
    const rd_kafka_resp_err_t rc = rd_kafka_commit(rk_, offsets, 0);
    rd_kafka_topic_partition_list_destroy(offsets);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (ctx_.metrics != nullptr) ctx_.metrics->state.commits_failed->Increment();
      Log(LogLevel::kWarn, "kafka", "offset commit failed",
          {{"consumer", std::to_string(index_)}, {"error", rd_kafka_err2str(rc)}});
      return base::Status::Unavailable(std::string("offset commit failed: ") +
                                       rd_kafka_err2str(rc));
    }
    if (ctx_.metrics != nullptr) {
      ctx_.metrics->state.commits_ok->Increment();
      ctx_.metrics->offset_commits->Increment();
    }
    return {};
  }

  Partition* Find(const char* topic, int32_t partition) {
    for (auto& p : parts_) {
      if (p->partition == partition && p->topic == topic) return p.get();
    }
    return nullptr;
  }

  void MaybeDone(Partition* p) {
    if (!available_now_ || p->clock.done) return;
    if (p->target <= 0 || p->next_offset >= p->target) {
      p->clock.done = true;
      std::lock_guard<std::mutex> lock(group_->mu);
      if (group_->done_parts.insert({p->topic, p->partition}).second) group_->done.fetch_add(1);
    }
  }

  void HandleMessage(rd_kafka_message_t* m, Clock::time_point now) {
    if (restore_failed_) {
      rd_kafka_message_destroy(m);
      return;
    }
    Partition* p = last_;
    if (p == nullptr || p->rkt != m->rkt || p->partition != m->partition) {
      p = Find(rd_kafka_topic_name(m->rkt), m->partition);
      if (p != nullptr) p->rkt = m->rkt;
      last_ = p;
    }
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      if (p != nullptr) {
        if (p->next_offset < m->offset) p->next_offset = m->offset;
        if (m->offset >= p->next_offset) p->at_end = true;
        MaybeDone(p);
      }
    } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      Log(LogLevel::kWarn, "kafka", "consumer error",
          {{"consumer", std::to_string(index_)}, {"error", rd_kafka_message_errstr(m)}});
    } else if (p != nullptr && m->offset < p->next_offset) {
      // Delivered again (a fetch restarted after a pause or a seek): already processed.
    } else if (p != nullptr) {
      const int64_t append_ms = rd_kafka_message_timestamp(m, nullptr);
      ingestor_->Handle({static_cast<const char*>(m->payload), m->len}, p->slot, m->offset,
                        &p->clock, append_ms >= 0 ? append_ms : window::kNoTime);
      // A partition that resumes after being quiet for idle_timeout: the stream may be
      // resuming on every partition, and the others' first records may be a fetch away. No
      // partition counts as idle for another idle_timeout, so none of them is passed over.
      if (now - p->clock.last_data > idle_timeout_) behind_at_ = now;
      p->clock.last_data = now;
      p->at_end = false;
      p->next_offset = m->offset + 1;
      if (p->target >= 0 && p->next_offset >= p->target) MaybeDone(p);
    }
    rd_kafka_message_destroy(m);
  }

  window::SourceProgress Progress(Clock::time_point now) const {
    if (parts_.empty()) {
      if (now - unassigned_since_ < idle_timeout_) return {window::kNoTime, false, false};
      return {window::kNoTime, true, false};
    }
    int64_t frontier = window::kEndOfTime;
    int64_t idle_high = window::kNoTime;
    int64_t held = window::kEndOfTime;
    bool any = false;
    // A partition may be idle only once this consumer has kept up for idle_timeout: its end of
    // partition is then fresh, and a record for it would have been fetched by now.
    const bool kept_up = now - behind_at_ > idle_timeout_;
    for (const auto& p : parts_) {
      // --available-now: a partition read to its target says nothing more; the run's end
      // closes every window.
      if (p->clock.done) continue;
      held = std::min(held, p->clock.high_ms);
      if (kept_up && p->at_end && now - p->clock.last_data > idle_timeout_) {  // idle
        idle_high = std::max(idle_high, p->clock.high_ms);
        continue;
      }
      any = true;
      frontier = std::min(frontier, p->clock.high_ms);
    }
    if (!any) return {idle_high, true, false, held == window::kEndOfTime ? window::kNoTime : held};
    return {frontier, false, false};
  }

  void PublishLag() {
    for (const auto& p : parts_) {
      if (p->watermark_gauge != nullptr && p->clock.high_ms != window::kNoTime) {
        p->watermark_gauge->Set(static_cast<double>(p->clock.high_ms) / 1000.0);
      }
      int64_t lo = 0;
      int64_t hi = 0;
      if (p->lag_gauge != nullptr && p->next_offset >= 0 &&
          rd_kafka_get_watermark_offsets(rk_, p->topic.c_str(), p->partition, &lo, &hi) ==
              RD_KAFKA_RESP_ERR_NO_ERROR) {
        p->lag_gauge->Set(static_cast<double>(std::max<int64_t>(0, hi - p->next_offset)));
      }
    }
  }

  const IngestContext ctx_;
  const int index_;
  const std::shared_ptr<GroupState> group_;
  const bool available_now_;
  const Clock::duration idle_timeout_;
  std::unique_ptr<Ingestor> ingestor_;
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_queue_t* queue_ = nullptr;
  std::vector<std::unique_ptr<Partition>> parts_;  // owned by this source's thread
  Partition* last_ = nullptr;
  std::atomic<int> assigned_{0};
  bool closing_ = false;
  bool paused_ = false;  // every assigned partition's fetching is paused (backpressure)
  uint64_t handled_epoch_ = 0;
  std::atomic<bool> checkpoint_in_flight_{false};
  bool stop_checkpointed_ = false;
  bool restore_failed_ = false;
  base::Status stop_status_;
  // Since when this consumer has held no partition (start, or its last revoke). Until
  // idle_timeout has passed, it holds the watermark back: a rebalance is under way and its
  // partitions may hold data far behind the others'.
  Clock::time_point unassigned_since_ = Clock::now();
  // The last poll, and the last time this consumer was behind (see Run).
  Clock::time_point last_poll_ = Clock::now();
  Clock::time_point behind_at_ = Clock::now();
};

// Reads the partitions of every topic and their end offsets, for --available-now.
base::Status ReadTargets(const config::KafkaSourceConfig& k, GroupState* group,
                         const std::atomic<bool>* cancel) {
  auto cancelled = [cancel] { return cancel != nullptr && cancel->load(); };
  std::string err;
  rd_kafka_conf_t* conf = BaseConf(k, &err);
  if (!err.empty()) {
    rd_kafka_conf_destroy(conf);
    return base::Status::InvalidArgument(err);
  }
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (rk == nullptr) return base::Status::InvalidArgument(errstr);
  base::Status result;
  for (const std::string& topic : k.topics) {
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_resp_err_t rc = RD_KAFKA_RESP_ERR__TRANSPORT;
    for (int attempt = 0; attempt < 60 && rc != RD_KAFKA_RESP_ERR_NO_ERROR && !cancelled();
         ++attempt) {
      rc = rd_kafka_metadata(rk, 0, rkt, &md, 1000);
      if (rc == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 && md->topics[0].err != 0) {
        rc = md->topics[0].err;
        rd_kafka_metadata_destroy(md);
        md = nullptr;
      }
    }
    if (cancelled()) {
      result = base::Status::Unavailable("stopped during start-up");
      if (md != nullptr) rd_kafka_metadata_destroy(md);
      rd_kafka_topic_destroy(rkt);
      break;
    }
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
      result =
          base::Status::Unavailable("metadata for topic '" + topic + "': " + rd_kafka_err2str(rc));
      rd_kafka_topic_destroy(rkt);
      break;
    }
    for (int i = 0; i < md->topics[0].partition_cnt; ++i) {
      const int32_t part = md->topics[0].partitions[i].id;
      int64_t lo = 0;
      int64_t hi = 0;
      rc = rd_kafka_query_watermark_offsets(rk, topic.c_str(), part, &lo, &hi, 10000);
      if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        result = base::Status::Unavailable("end offset of " + topic + "/" + std::to_string(part) +
                                           ": " + rd_kafka_err2str(rc));
        break;
      }
      group->targets[{topic, part}] = hi;
    }
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
  }
  rd_kafka_destroy(rk);
  group->total = static_cast<int>(group->targets.size());
  // Empty partitions have nothing to wait for; they are counted when assigned (target 0 or
  // lo == hi makes MaybeDone true at once).
  return result;
}

}  // namespace

base::Result<std::vector<std::unique_ptr<Source>>> MakeKafkaSources(const IngestContext& ctx,
                                                                    bool available_now) {
  auto group = std::make_shared<GroupState>();
  if (available_now) {
    base::Status s = ReadTargets(ctx.config->source.kafka, group.get(), ctx.cancel);
    if (!s.ok()) return s;
    Log(LogLevel::kInfo, "kafka", "available-now: end offsets read",
        {{"partitions", std::to_string(group->total)}});
  }
  std::vector<std::unique_ptr<Source>> sources;
  const int n = std::max(1, ctx.config->source.kafka.consumer_threads);
  for (int i = 0; i < n; ++i) {
    auto ingestor = Ingestor::Create(ctx, i);
    if (!ingestor.ok()) return ingestor.status();
    auto src =
        std::make_unique<KafkaSource>(ctx, i, group, available_now, std::move(ingestor).value());
    base::Status s = src->Open();
    if (!s.ok()) return s;
    sources.push_back(std::move(src));
  }
  return sources;
}

}  // namespace turnstiled::ingest
