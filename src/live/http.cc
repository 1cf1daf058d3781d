#include "live/http.h"

#include <civetweb.h>

#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <semaphore>
#include <string_view>
#include <thread>
#include <vector>

#include "base/log.h"
#include "base/thread_name.h"
#include "live/page.h"

namespace turnstiled::live {

namespace {

using Clock = std::chrono::steady_clock;

// The page with its <script> moved out to /live.js, and that script; split once.
struct SplitPage {
  std::string html;
  std::string script;
};

const SplitPage& Page() {
  static const SplitPage page = [] {
    SplitPage p;
    const std::string_view all = PageHtml();
    const size_t open = all.find("<script>");
    const size_t close = open == std::string_view::npos ? open : all.find("</script>", open);
    if (close == std::string_view::npos) {
      p.html = all;
      return p;
    }
    p.script = all.substr(open + 8, close - open - 8);
    p.html = std::string(all.substr(0, open)) + "<script src=\"/live.js\"></script>" +
             std::string(all.substr(close + 9));
    return p;
  }();
  return page;
}

// The page may run only its own script (no inline script, so no injected handler can run),
// talk only to this server, and load nothing from anywhere else.
constexpr const char* kPagePolicy =
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

void Send(mg_connection* conn, int code, const char* status, const char* type,
          std::string_view body, bool head, const char* extra = "") {
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
            "X-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n%s"
            "Connection: close\r\n\r\n",
            code, status, type, body.size(), extra);
  if (!head) mg_write(conn, body.data(), body.size());
}

// The writing half of a stream: a thread of its own at the lowest priority writes what the
// client's worker thread pulls. On a busy machine the pipeline's threads come first, and a
// client that cannot keep up falls behind (and is told of a gap) instead of slowing them. The
// worker thread takes its references from the hub (a short lock, at its own priority, so a
// starved writer never holds a lock a publisher needs) and otherwise waits; it keeps its
// priority for the requests it serves next.
//
// However many clients there are, at most kWriting of their writers write at once (the others
// wait, using no CPU): 50 low-priority threads all runnable would still add up to a share of
// the machine that the pipeline would notice.
constexpr int kWriting = 2;
std::counting_semaphore<kWriting> writing(kWriting);

class Writer {
 public:
  explicit Writer(mg_connection* conn) : conn_(conn), thread_([this] { Loop(); }) {}
  ~Writer() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Writes `frames` (and empties it). False when the client is gone; *slow: it stopped reading.
  // `direct`: on the calling thread, at its priority.
  bool Write(std::vector<Hub::Frames>* frames, bool* slow, bool direct) {
    if (direct) {
      const bool ok = WriteAll(*frames, slow);
      frames->clear();
      return ok;
    }
    std::unique_lock<std::mutex> lock(mu_);
    batch_.swap(*frames);
    pending_ = true;
    cv_.notify_all();
    cv_.wait(lock, [this] { return !pending_; });
    batch_.clear();  // drop the references here, not on the writer's thread
    *slow = slow_;
    return ok_;
  }

 private:
  void Loop() {
    base::NameThisThread("live-client");
    // SCHED_IDLE. Once the stream has ended the rest is written at normal priority
    // (Write(direct)), so a machine kept busy by other work cannot hold a client's last events
    // back.
    RunAtIdlePriority();
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return pending_ || quit_; });
      if (quit_) return;
      lock.unlock();
      bool slow = false;
      writing.acquire();
      const bool ok = WriteAll(batch_, &slow);
      writing.release();
      lock.lock();
      ok_ = ok;
      slow_ = slow;
      pending_ = false;
      cv_.notify_all();
    }
  }

  bool WriteAll(const std::vector<Hub::Frames>& frames, bool* slow) {
    for (const Hub::Frames& f : frames) {
      const std::string_view bytes = f.view();
      const auto t0 = Clock::now();
      const int written = mg_write(conn_, bytes.data(), bytes.size());
      if (written < 0 || static_cast<size_t>(written) != bytes.size()) {
        // A socket that stays full for the server's write timeout: the client stopped reading
        // (or it went away).
        *slow = Clock::now() - t0 >= std::chrono::milliseconds(1500);
        base::Log(base::LogLevel::kInfo, "live",
                  *slow ? "client dropped: it stopped reading" : "client went away",
                  {{"written", std::to_string(written)}, {"of", std::to_string(bytes.size())}});
        return false;
      }
    }
    return true;
  }

  mg_connection* const conn_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Hub::Frames> batch_;  // guarded by mu_ (owned by the writer while pending_)
  bool pending_ = false;            // guarded by mu_
  bool quit_ = false;               // guarded by mu_
  bool ok_ = true;                  // guarded by mu_
  bool slow_ = false;               // guarded by mu_
  std::thread thread_;              // last: starts once the rest is ready
};

// Streams the events after `cursor` until the end or a failed write. Returns true when the
// client was dropped for not reading.
bool Stream(Hub& hub, mg_connection* conn, uint64_t cursor) {
  const HubOptions& o = hub.options();
  Writer writer(conn);
  std::vector<Hub::Frames> batch;
  batch.push_back(Hub::Text(hub.HelloFrame(cursor)));
  auto next_heartbeat = Clock::now();
  auto next_pull = Clock::now();
  for (;;) {
    // Events are sent at most every kPullEvery: a busy stream goes out in fewer, larger
    // writes, and each client's thread wakes ten times a second, not at every publish.
    constexpr auto kPullEvery = std::chrono::milliseconds(100);
    if (!hub.closed()) std::this_thread::sleep_until(next_pull);  // the end goes out at once
    next_pull = Clock::now() + kPullEvery;
    const auto now = Clock::now();
    if (now >= next_heartbeat) {
      batch.push_back(Hub::Text(hub.HeartbeatFrame()));
      next_heartbeat = now + o.heartbeat;
    }
    if (!batch.empty()) {
      bool slow = false;
      if (!writer.Write(&batch, &slow, hub.closed())) return slow;
    }
    const auto wait = std::min<Clock::duration>(
        std::chrono::milliseconds(250),
        std::max<Clock::duration>(next_heartbeat - Clock::now(), Clock::duration::zero()));
    uint64_t first = 0;
    switch (hub.Pull(&cursor, &batch, 256 * 1024,
                     std::chrono::duration_cast<std::chrono::milliseconds>(wait), &first)) {
      case Hub::PullResult::kGap:
        // A resume from further back than the ring holds, or a burst larger than the ring
        // (the end of a file, say) that this client had not sent yet: it is told what it
        // missed and goes on from the oldest event kept. A client that stops reading is
        // dropped by the write timeout instead.
        batch.push_back(Hub::Text(Hub::GapFrame(cursor, first)));
        cursor = first - 1;
        hub.NoteGap();
        break;
      case Hub::PullResult::kEnded: {
        // The final figures, then `end`, written here: nothing may follow `end` (a heartbeat
        // that came due at the top of the loop once did).
        batch.push_back(Hub::Text(hub.HeartbeatFrame()));
        batch.push_back(Hub::Text(Hub::EndFrame()));
        bool slow = false;
        return !writer.Write(&batch, &slow, /*direct=*/true) && slow;
      }
      case Hub::PullResult::kEvents:
      case Hub::PullResult::kTimeout:
        break;
    }
  }
}

void ServeEvents(Hub& hub, mg_connection* conn, bool head) {
  constexpr const char* kHeaders =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
      "Cache-Control: no-store\r\nX-Accel-Buffering: no\r\n"
      "X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n";
  if (head) {  // the headers a GET would get, without becoming a client
    mg_printf(conn, "%s", kHeaders);
    return;
  }
  uint64_t cursor = 0;
  if (hub.Join(&cursor) == Hub::Admit::kFull) {
    Send(conn, 503, "Service Unavailable", "text/plain",
         "too many live clients (live.max_clients); try again later\n", head, "Retry-After: 5\r\n");
    return;
  }
  mg_printf(conn, "%s", kHeaders);
  if (const char* last = mg_get_header(conn, "Last-Event-ID")) {
    uint64_t id = 0;
    const auto [end, ec] = std::from_chars(last, last + std::strlen(last), id);
    if (ec == std::errc() && id <= cursor) cursor = id;
  }
  hub.Leave(Stream(hub, conn, cursor));
}

}  // namespace

bool HandleRequest(Hub& hub, mg_connection* conn, const std::string& uri, bool head) {
  if (uri == "/live" || uri == "/live/") {
    std::string extra = "Content-Security-Policy: ";
    extra += kPagePolicy;
    extra += "\r\n";
    Send(conn, 200, "OK", "text/html; charset=utf-8", Page().html, head, extra.c_str());
    return true;
  }
  if (uri == "/live.js") {
    Send(conn, 200, "OK", "text/javascript; charset=utf-8", Page().script, head);
    return true;
  }
  if (uri == "/events") {
    ServeEvents(hub, conn, head);
    return true;
  }
  return false;
}

}  // namespace turnstiled::live
