// Hub: what the live view (docs/LIVE.md) sends to its clients, kept in one fixed ring.
//
//   shard threads:   Publish(update rows), once per coalesce interval, only while watched
//   pipeline output: Publish(close rows), per closed window, only while recording
//   encoder thread:  turns what was published into SSE frames, at the lowest priority
//   HTTP threads:    Pull(cursor), one thread per /events client
//
// Publish() only queues a reference to the rows (the same immutable batch the writers get):
// the JSON is made on the hub's own encoder thread, which runs at SCHED_IDLE, so a pipeline
// that keeps the machine busy does not spend its time on the live view. What waits to be
// encoded is bounded like the ring: when more events wait than the ring holds, the oldest are
// skipped (their ids become a `gap` for the clients), as the ring would have dropped them.
// Close() and Sync() encode what is left on the calling thread.
//
// The ring holds the newest `buffer_events` events as ready-made SSE frames (each batch's
// frames are one immutable block; a slot points into it), each with an id that grows by one. A
// client is only a cursor into it: it copies what it has not sent yet and writes it out on its own
// thread. A client that falls a whole ring behind has lost events (it is told so with a `gap`
// event), so clients never make a producer wait beyond the copy of a slot's pointer, and never grow
// memory: a block is freed when the ring has moved past it and no client is copying it.
//
// Thread-safe. watching() is a relaxed atomic load, cheap enough to ask once per batch.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "window/row.h"

namespace turnstiled::live {

struct HubOptions {
  std::chrono::milliseconds coalesce{250};
  std::chrono::milliseconds heartbeat{1000};
  int max_clients = 64;
  size_t buffer_events = 16384;
  // Closed windows keep being recorded this long after the last client left, so that a client
  // can resume with Last-Event-ID after a short disconnection.
  std::chrono::milliseconds keep_after_last_client{60000};
  // The `hello` event's `window` object, e.g. {"type":"tumbling","size_ms":14400000,...}.
  std::string window_json = "{}";
  std::string version;
  // The first event's id; 0: the time of start in microseconds since the epoch, so that the
  // ids of a later run are higher than any of an earlier one, and a client resuming across a
  // restart is told of a gap instead of being matched to an unrelated event.
  uint64_t first_id = 0;
  // false (tests): no encoder thread; only EncodeOne(), Sync() and Close() encode.
  bool encoder_thread = true;
};

// What a heartbeat reports; filled by the pipeline from its metrics.
struct Stats {
  int64_t watermark_ms = 0;  // 0: none yet
  bool has_lag = false;      // Kafka sources only
  double lag = 0;            // records
  uint64_t records = 0;
  uint64_t open_windows = 0;
};

enum class Kind { kUpdate, kClose };

// Puts the calling thread at SCHED_IDLE, so that it runs only on CPU time nothing else wants
// (nice 19 where that is refused). The live view's encoder and client writers call it.
void RunAtIdlePriority();

class Hub {
 public:
  // `registry` may be null (tests). `stats` is called from HTTP threads.
  Hub(HubOptions options, prometheus::Registry* registry, std::function<Stats()> stats);
  ~Hub();
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  const HubOptions& options() const { return options_; }

  // --- producers ---
  // True while an /events client is connected.
  bool watching() const { return clients_.load(std::memory_order_relaxed) > 0; }
  // Grows when a client joins: a shard that sees it change sends all its open windows once,
  // so that the new client sees every open window within one coalesce interval.
  uint64_t snapshot_generation() const { return generation_.load(std::memory_order_relaxed); }
  using Rows = std::shared_ptr<const std::vector<window::WindowRow>>;
  // Queues `rows` to be encoded as events of `kind` (closes: the final rows only). Does
  // nothing while nobody watches (and nobody left in the last keep_after_last_client). Takes
  // a lock only to queue the reference; never waits for the encoding.
  void Publish(Kind kind, Rows rows);
  void Publish(Kind kind, std::vector<window::WindowRow> rows) {
    if (!rows.empty() && Recording()) {
      Publish(kind, std::make_shared<const std::vector<window::WindowRow>>(std::move(rows)));
    }
  }
  // Encodes, on the calling thread, everything published before the call that the encoder
  // thread has not done yet.
  void Sync();
  // Sync() one batch at a time: false when nothing waited.
  bool EncodeOne();
  // The stream ends: what was published is encoded, then clients send what is left, then
  // `end`, then leave. Publish() after it does nothing.
  void Close();
  bool closed() const { return closed_flag_.load(); }
  // After Close(): waits until every client has left or `timeout` passed. True if all left.
  bool WaitForClients(std::chrono::milliseconds timeout);
  // A client was connected in the last `within`: one may be reconnecting.
  bool WatchedWithin(std::chrono::milliseconds within) const;

  // --- clients (HTTP threads) ---
  // A client may still join after Close(): it gets what it resumes from, then `end`.
  enum class Admit { kOk, kFull };
  // On kOk, *cursor is the newest id: the client's stream starts after it, and the open
  // windows the shards send for its join come after it too.
  Admit Join(uint64_t* cursor);
  void Leave(bool slow);
  uint64_t last_id() const;
  // A client was sent a `gap` event (it resumed from, or fell, further back than the ring).
  void NoteGap() {
    if (gaps_ != nullptr) gaps_->Increment();
  }

  // Some frames: [begin, end) of an immutable block. Holding one keeps its block alive.
  struct Frames {
    std::shared_ptr<const std::string> block;
    uint32_t begin = 0;
    uint32_t end = 0;
    std::string_view view() const { return std::string_view(*block).substr(begin, end - begin); }
  };
  static Frames Text(std::string text) {
    auto block = std::make_shared<const std::string>(std::move(text));
    const auto size = static_cast<uint32_t>(block->size());
    return {std::move(block), 0, size};
  }

  enum class PullResult {
    kEvents,   // frames were appended to *out
    kTimeout,  // nothing new within `wait`
    kGap,      // the events after *cursor left the ring or were skipped: *first_id is the next
               // one kept (it may not exist yet)
    kEnded,    // Close() was called and everything up to it has been pulled
  };
  // Appends the frames of events after *cursor (up to about `max_bytes`) to *out and advances
  // *cursor; waits up to `wait` for one. On kGap nothing is appended and *cursor is unchanged.
  // Stops before a skipped event, so that a gap comes next.
  // Only references are taken (under the lock, briefly): the bytes are not copied.
  PullResult Pull(uint64_t* cursor, std::vector<Frames>* out, size_t max_bytes,
                  std::chrono::milliseconds wait, uint64_t* first_id);

  // Whole SSE frames (terminated by a blank line).
  // `after`: the id the stream continues after.
  std::string HelloFrame(uint64_t after) const;
  std::string HeartbeatFrame();
  static std::string GapFrame(uint64_t after, uint64_t first_id);
  static std::string EndFrame() { return "event: end\ndata: {}\n\n"; }

 private:
  bool Recording() const;
  uint64_t FirstIdLocked() const;
  // The first id from `id` on whose event was not skipped (next_id_ if there is none yet).
  uint64_t NextKeptLocked(uint64_t id) const;
  void EncoderLoop();
  // Encodes the oldest queued batch (and first gives ids to events skipped before it). Needs
  // publish_mu_. False when nothing was queued.
  bool EncodeNext();

  const HubOptions options_;
  const std::function<Stats()> stats_;

  std::atomic<int> clients_{0};
  std::atomic<bool> closed_flag_{false};  // closed_, readable without mu_
  std::atomic<uint64_t> generation_{0};
  // Steady clock: when a client last left. Closes are recorded while someone watches and for
  // keep_after_last_client after that (Recording()).
  std::atomic<int64_t> last_left_ns_{0};

  // What waits for the encoder, oldest first.
  struct Batch {
    Kind kind;
    Rows rows;
    size_t events;
  };
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<Batch> queue_;      // guarded by queue_mu_
  size_t queued_events_ = 0;     // guarded by queue_mu_: the events in queue_
  uint64_t skipped_events_ = 0;  // guarded by queue_mu_: dropped from queue_'s front, no ids yet
  bool closing_ = false;         // guarded by queue_mu_: Close() was called, Publish() ignored
  bool stop_ = false;            // guarded by queue_mu_: the encoder thread ends

  // One event: its frame, [begin, end) of the frames of the batch that made it. Frames are
  // immutable once published, so a reader writes them out after letting go of mu_. A slot
  // without a block is an event that was skipped: a client reaching it is told of a gap.
  using Slot = Frames;
  std::mutex publish_mu_;  // one encoding at a time; taken before queue_mu_ and mu_
  std::string json_;       // guarded by publish_mu_: scratch
  std::vector<size_t> ends_;
  std::vector<uint32_t> starts_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  const uint64_t first_id_;
  std::vector<Slot> ring_;  // guarded by mu_: event id i is in ring_[(i - first_id_) % size]
  uint64_t next_id_;        // guarded by mu_
  bool closed_ = false;     // guarded by mu_
  std::condition_variable left_cv_;

  std::mutex rate_mu_;
  std::chrono::steady_clock::time_point rate_at_{};  // guarded by rate_mu_
  uint64_t rate_records_ = 0;                        // guarded by rate_mu_
  double rate_ = 0;                                  // guarded by rate_mu_

  prometheus::Gauge* clients_gauge_ = nullptr;
  prometheus::Counter* events_update_ = nullptr;
  prometheus::Counter* events_close_ = nullptr;
  prometheus::Counter* dropped_slow_ = nullptr;
  prometheus::Counter* refused_ = nullptr;
  prometheus::Counter* gaps_ = nullptr;
  prometheus::Counter* skipped_ = nullptr;

  std::thread encoder_;  // last: starts once the rest is ready
};

}  // namespace turnstiled::live
