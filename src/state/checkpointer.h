// Checkpointer: when partition state is saved, where, and when offsets may be committed
// (SPEC §6; docs/STATE.md).
//
// A checkpoint of a set of partitions is taken at a cut of each partition's input: the source
// that reads the partition asks the shard that owns it to export its state (a ShardControl in
// the shard's queue, so the cut falls exactly after the records before it). The state is then
// safe to store only once every row the shards emitted before the cut is acknowledged by every
// sink: a window closed before the cut is no longer in the state, so its row must be durable
// first. Then the snapshots go to state.dir and to the changelog topic, and only then are the
// partitions' offsets committed. A crash therefore replays at most one interval, from a state
// that matches the offset it resumes at.
//
//   periodic   the checkpoint thread raises epoch() every checkpoint_interval; each source
//              sees it, exports its partitions and hands the export to Submit(); the thread
//              waits for the sinks, persists, and calls the source's commit function. The
//              source never waits.
//   revoke,    the source calls Checkpoint() itself and waits: the state must be stored before
//   stop       the partitions are let go or the process exits.
//
// Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "metrics/metrics.h"
#include "state/changelog.h"
#include "state/local_store.h"
#include "window/partition_state.h"

namespace turnstiled::state {

// What the checkpointer needs from the writer pool.
struct AckTracker {
  std::function<uint64_t()> submitted;  // sequence number of the newest submission
  std::function<uint64_t()> acked;      // highest sequence number every sink acknowledged
  std::function<void()> request_flush;  // ask every sink to flush now
  // True once a sink failed for good: nothing more will be acknowledged. May be empty.
  std::function<bool()> failed;
  // Makes every dead letter written so far durable: a record dropped before the cut must be in
  // the dead letter before an offset past it is committed. May be empty.
  std::function<base::Status()> flush_dead_letter;
};

struct CheckpointerOptions {
  std::string dir;
  std::string group;
  std::string changelog_topic;  // "" when off
  std::string bootstrap;
  std::map<std::string, std::string> properties;
  int partitions_hint = 1;
  std::chrono::milliseconds interval{10000};
};

// One partition's committed position.
struct Committed {
  std::string topic;
  int32_t partition;
  int64_t next_offset;
};
using CommitFn = std::function<void(const std::vector<Committed>&)>;

class Checkpointer {
 public:
  // Opens state.dir (an error when it cannot be written) and the changelog producer.
  static base::Result<std::unique_ptr<Checkpointer>> Create(const CheckpointerOptions& options,
                                                            AckTracker acks,
                                                            metrics::StateMetrics* metrics);
  ~Checkpointer();
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // Starts the periodic thread.
  void Start();
  // Stops it; a checkpoint waiting for the sinks is abandoned (the next start replays it).
  void Stop();

  // Raised every interval; a source checkpoints when it sees a value it has not handled.
  uint64_t epoch() const { return epoch_.load(std::memory_order_relaxed); }

  // The newest snapshot of a partition: the one with the highest offset in state.dir and the
  // changelog (state.dir wins a tie). Counted by source; nullopt (logged) when there is none;
  // kUnavailable when the changelog could not be read (not the same as none: retry).
  base::Result<std::optional<window::PartitionState>> Restore(const std::string& topic,
                                                              int32_t partition);

  // Periodic path: `states` are exported at a cut taken after `seq` was submitted; `commit`
  // is called on the checkpoint thread once the checkpoint is done, with the partitions
  // stored (none when it was skipped or failed). Returns at once.
  void Submit(std::vector<window::PartitionState> states, uint64_t seq, CommitFn commit);
  // Revoke and stop path: waits for the sinks (until `deadline`), stores, returns what was
  // stored (the caller commits it). kUnavailable when the sinks did not acknowledge in time.
  base::Result<std::vector<Committed>> Checkpoint(const std::vector<window::PartitionState>& states,
                                                  uint64_t seq,
                                                  std::chrono::steady_clock::time_point deadline);

  uint64_t Submitted() const { return acks_.submitted(); }

 private:
  struct Pending {
    std::vector<window::PartitionState> states;
    uint64_t seq;
    CommitFn commit;
    std::chrono::steady_clock::time_point cut;
  };
  Checkpointer(const CheckpointerOptions& options, AckTracker acks, metrics::StateMetrics* metrics);
  void Run();
  // Asks the sinks to flush and waits until they acknowledged `seq`; false at `deadline`, or
  // at Stop() when `stop_aware`.
  bool WaitAcked(uint64_t seq, std::chrono::steady_clock::time_point deadline, bool stop_aware);
  base::Result<std::vector<Committed>> Persist(const std::vector<window::PartitionState>& states,
                                               std::chrono::steady_clock::time_point cut);

  // Constant after construction.
  const CheckpointerOptions options_;
  const AckTracker acks_;
  metrics::StateMetrics* const metrics_;  // may be null
  LocalStore local_;
  std::unique_ptr<Changelog> changelog_;

  std::atomic<uint64_t> epoch_{0};
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;  // guarded by mu_
  std::thread thread_;

  std::mutex persist_mu_;  // one Persist() at a time
  // Newest offset stored per partition, so an older cut never replaces a newer one.
  std::map<std::pair<std::string, int32_t>, int64_t> stored_;  // guarded by persist_mu_
};

}  // namespace turnstiled::state
