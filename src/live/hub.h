// Hub: what the live view (docs/LIVE.md) sends to its clients, kept in one fixed ring.
//
//   shard threads:   Publish(update rows), once per coalesce interval, only while watched
//   pipeline output: Publish(close rows), per closed window, only while recording
//   HTTP threads:    Pull(cursor), one thread per /events client
//
// The ring holds the newest `buffer_events` events as ready-made SSE frames (each Publish()
// writes its frames into one immutable block; a slot points into it), each with an id that
// grows by one. A client is only a cursor into it: it copies what it has not sent yet and
// writes it out on its own thread. A client that falls a whole ring behind has lost events (it
// is told so with a `gap` event), so clients never make a producer wait beyond the copy of a
// slot's pointer, and never grow memory: a block is freed when the ring has moved past it and
// no client is copying it.
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
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
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

class Hub {
 public:
  // `registry` may be null (tests). `stats` is called from HTTP threads.
  Hub(HubOptions options, prometheus::Registry* registry, std::function<Stats()> stats);
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  const HubOptions& options() const { return options_; }

  // --- producers ---
  // True while an /events client is connected.
  bool watching() const { return clients_.load(std::memory_order_relaxed) > 0; }
  // Grows when a client joins: a shard that sees it change sends all its open windows once,
  // so that the new client sees every open window within one coalesce interval.
  uint64_t snapshot_generation() const { return generation_.load(std::memory_order_relaxed); }
  // Encodes `rows` as events of `kind`. Does nothing while nobody watches (and nobody left in
  // the last keep_after_last_client).
  void Publish(Kind kind, const std::vector<window::WindowRow>& rows);
  // The stream ends: clients send what is left, then `end`, then leave.
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
    kGap,      // *cursor is older than the ring holds: *first_id is the oldest event kept
    kEnded,    // Close() was called and everything up to it has been pulled
  };
  // Appends the frames of events after *cursor (up to about `max_bytes`) to *out and advances
  // *cursor; waits up to `wait` for one. On kGap nothing is appended and *cursor is unchanged.
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

  const HubOptions options_;
  const std::function<Stats()> stats_;

  std::atomic<int> clients_{0};
  std::atomic<bool> closed_flag_{false};  // closed_, readable without mu_
  std::atomic<uint64_t> generation_{0};
  // Steady clock: when a client last left. Closes are recorded while someone watches and for
  // keep_after_last_client after that (Recording()).
  std::atomic<int64_t> last_left_ns_{0};

  // One event: its frame, [begin, end) of the frames of the Publish() that made it. Frames are
  // immutable once published, so a reader writes them out after letting go of mu_.
  using Slot = Frames;
  std::mutex publish_mu_;  // one Publish() at a time; taken before mu_
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
};

}  // namespace turnstiled::live
