#include "live/http.h"

#include <civetweb.h>

#include <charconv>
#include <chrono>
#include <cstring>
#include <string_view>

#include "base/log.h"
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
  const HubOptions& o = hub.options();
  std::string buf = hub.HelloFrame(cursor);
  buf.reserve(300 * 1024);
  auto next_heartbeat = Clock::now();
  bool slow = false;
  bool ended = false;
  for (;;) {
    const auto now = Clock::now();
    if (now >= next_heartbeat) {
      buf += hub.HeartbeatFrame();
      next_heartbeat = now + o.heartbeat;
    }
    if (!buf.empty()) {
      const auto t0 = Clock::now();
      const int written = mg_write(conn, buf.data(), buf.size());
      if (written < 0 || static_cast<size_t>(written) != buf.size()) {
        // A socket that stays full for the server's write timeout: the client stopped reading
        // (or it went away).
        slow = Clock::now() - t0 >= std::chrono::milliseconds(1500);
        base::Log(base::LogLevel::kInfo, "live",
                  slow ? "client dropped: it stopped reading" : "client went away",
                  {{"written", std::to_string(written)}, {"of", std::to_string(buf.size())}});
        break;
      }
      buf.clear();
    }
    if (ended) break;
    const auto wait = std::min<Clock::duration>(
        std::chrono::milliseconds(250),
        std::max<Clock::duration>(next_heartbeat - Clock::now(), Clock::duration::zero()));
    uint64_t first = 0;
    switch (hub.Pull(&cursor, &buf, 256 * 1024,
                     std::chrono::duration_cast<std::chrono::milliseconds>(wait), &first)) {
      case Hub::PullResult::kGap:
        // A resume from further back than the ring holds, or a burst larger than the ring
        // (the end of a file, say) that this client had not read yet: it is told what it
        // missed and goes on from the oldest event kept. A client that stops reading is
        // dropped by the write timeout above instead.
        buf += Hub::GapFrame(cursor, first);
        cursor = first - 1;
        hub.NoteGap();
        break;
      case Hub::PullResult::kEnded:
        buf += hub.HeartbeatFrame();  // the final figures
        buf += Hub::EndFrame();
        ended = true;
        break;
      case Hub::PullResult::kEvents:
      case Hub::PullResult::kTimeout:
        break;
    }
  }
  hub.Leave(slow);
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
