// `turnstiled tap`: prints a running daemon's windows as they update and close (docs/LIVE.md).
//
// A minimal HTTP/1.1 client (plain http, one blocking socket at a time) reads `/events` as
// Server-Sent Events. On a lost connection it reconnects with Last-Event-ID every 0.5 s, for
// up to 30 s without an answer. SIGINT and SIGTERM are blocked and read from a signalfd beside
// the socket, so nothing runs in a signal handler and a stop is seen at once. SIGPIPE is
// ignored: a closed standard output (`| head`) ends the command quietly.
//
// Exit codes: 0 the daemon sent `end`, a signal, or standard output closed; 1 no connection
// or an error status; 2 usage error.
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <simdjson.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "app/commands.h"
#include "base/duration.h"
#include "base/status.h"

namespace turnstiled::app {
namespace {

namespace od = simdjson::ondemand;
using Clock = std::chrono::steady_clock;

constexpr auto kRetryFor = std::chrono::seconds(30);
constexpr int kRetryEveryMs = 500;
constexpr int kConnectTimeoutSec = 5;
constexpr int kFirstByteTimeoutMs = 10000;  // until `hello` says how often heartbeats come
constexpr size_t kMaxHeaderBytes = 64 * 1024;
constexpr size_t kMaxLineBytes = 1 << 20;

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view FirstLine(std::string_view text) {
  text = text.substr(0, text.find('\n'));
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  return text;
}

struct Url {
  std::string text;       // as given, for messages
  std::string authority;  // host[:port] as written, for the Host header
  std::string host;       // without IPv6 brackets
  std::string port = "80";
  std::string path = "/";
};

// http://host[:port][/path], host an IPv4 address, a [bracketed] IPv6 address or a name.
base::Result<Url> ParseUrl(std::string_view text) {
  constexpr std::string_view kScheme = "http://";
  if (!text.starts_with(kScheme)) {
    return base::Status::InvalidArgument(text.starts_with("https://")
                                             ? "https is not supported: the live view is plain http"
                                             : "expected http://host:port/path");
  }
  Url url;
  url.text = text;
  std::string_view rest = text.substr(kScheme.size());
  rest = rest.substr(0, rest.find('#'));
  const size_t slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) url.path = rest.substr(slash);
  for (char c : url.path) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
      return base::Status::InvalidArgument("the path holds a space or a control character");
    }
  }
  url.authority = authority;
  const bool bracketed = authority.starts_with('[');
  std::string_view host = authority;
  std::optional<std::string_view> port;
  if (bracketed) {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return base::Status::InvalidArgument("unclosed '['");
    host = authority.substr(1, close - 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty() && !after.starts_with(':')) {
      return base::Status::InvalidArgument("expected ':port' after ']'");
    }
    if (!after.empty()) port = after.substr(1);
  } else if (const size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty() || host.find_first_of(bracketed ? "@[]" : ":@[]") != std::string_view::npos) {
    return base::Status::InvalidArgument(
        "expected a host name, an IPv4 address or an [IPv6] address");
  }
  url.host = host;
  if (port) {
    int n = 0;
    const auto r = std::from_chars(port->data(), port->data() + port->size(), n);
    if (port->empty() || r.ec != std::errc() || r.ptr != port->data() + port->size() || n < 1 ||
        n > 65535) {
      return base::Status::InvalidArgument("the port must be a number from 1 to 65535");
    }
    url.port = *port;
  }
  return url;
}

// False with errno set if the peer is gone.
bool SendAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno != EINTR) return false;
    if (n > 0) bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {}
  Socket(Socket&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Socket& operator=(Socket&&) = delete;
  ~Socket() {
    if (fd_ >= 0) close(fd_);
  }
  int fd() const { return fd_; }

 private:
  int fd_;
};

// Tries every address of the host in turn. kNotFound: the name does not resolve; kUnavailable:
// no address took the connection (the last one's reason).
base::Result<Socket> Connect(const Url& url) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* list = nullptr;
  if (const int rc = getaddrinfo(url.host.c_str(), url.port.c_str(), &hints, &list); rc != 0) {
    return base::Status::NotFound(rc == EAI_SYSTEM ? std::strerror(errno) : gai_strerror(rc));
  }
  std::string why = "no address";
  for (const addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    Socket s(socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
    if (s.fd() < 0) {
      why = std::strerror(errno);
      continue;
    }
    // Bounds connect() and send() (signals are blocked, so nothing else would).
    const timeval timeout{kConnectTimeoutSec, 0};
    setsockopt(s.fd(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    if (connect(s.fd(), ai->ai_addr, ai->ai_addrlen) == 0) {
      freeaddrinfo(list);
      return s;
    }
    why = std::strerror(errno == EINPROGRESS ? ETIMEDOUT : errno);
  }
  freeaddrinfo(list);
  return base::Status::Unavailable(why);
}

// Undoes Transfer-Encoding: chunked as the bytes arrive.
class Dechunker {
 public:
  // Appends the payload in `in` to `out`. False on a malformed stream.
  bool Feed(std::string_view in, std::string* out) {
    for (size_t i = 0; i < in.size() && state_ != kDone;) {
      if (state_ == kData) {
        const size_t n = std::min<size_t>(left_, in.size() - i);
        out->append(in.substr(i, n));
        i += n;
        left_ -= n;
        if (left_ == 0) state_ = kDataEnd;
        continue;
      }
      const char c = in[i++];
      if (c != '\n') {
        if (line_.size() > 1024) return false;
        line_ += c;
        continue;
      }
      if (!line_.empty() && line_.back() == '\r') line_.pop_back();
      if (state_ == kSize) {
        const auto r = std::from_chars(line_.data(), line_.data() + line_.size(), left_, 16);
        if (r.ec != std::errc() || (r.ptr != line_.data() + line_.size() && *r.ptr != ';')) {
          return false;
        }
        state_ = left_ == 0 ? kTrailer : kData;
      } else if (state_ == kDataEnd) {
        if (!line_.empty()) return false;
        state_ = kSize;
      } else if (line_.empty()) {  // kTrailer
        state_ = kDone;
      }
      line_.clear();
    }
    return true;
  }

 private:
  enum State { kSize, kData, kDataEnd, kTrailer, kDone };
  State state_ = kSize;
  uint64_t left_ = 0;  // bytes of the current chunk still to come
  std::string line_;
};

struct Event {
  std::string type;
  std::string data;
  std::string id;  // "" when the event has no id field
};

// Splits a text/event-stream into events (WHATWG HTML, "Server-sent events"). Lines end in
// LF or CRLF. An event with an `event` field but no data is dispatched too.
class EventParser {
 public:
  // Calls on_event(const Event&) for each complete event while it returns true. False when
  // on_event asked to stop or a line is too long.
  template <typename F>
  bool Feed(std::string_view bytes, F&& on_event) {
    while (!bytes.empty()) {
      const size_t nl = bytes.find('\n');
      line_.append(bytes.substr(0, nl));
      if (line_.size() > kMaxLineBytes) return false;
      if (nl == std::string_view::npos) return true;
      bytes.remove_prefix(nl + 1);
      if (!line_.empty() && line_.back() == '\r') line_.pop_back();
      const bool go_on = Line(line_, on_event);
      line_.clear();
      if (!go_on) return false;
    }
    return true;
  }

 private:
  template <typename F>
  bool Line(std::string_view line, F& on_event) {
    if (line.empty()) {
      if (!has_data_ && event_.type.empty()) return true;
      if (has_data_) event_.data.pop_back();  // the last data line's '\n'
      const bool go_on = on_event(static_cast<const Event&>(event_));
      event_ = Event();
      has_data_ = false;
      return go_on;
    }
    if (line.front() == ':') return true;  // a comment
    const size_t colon = line.find(':');
    const std::string_view field = line.substr(0, colon);
    std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
    if (value.starts_with(' ')) value.remove_prefix(1);
    if (field == "event") {
      event_.type = value;
    } else if (field == "data") {
      event_.data.append(value).push_back('\n');
      has_data_ = true;
    } else if (field == "id" && value.find('\0') == std::string_view::npos) {
      event_.id = value;
    }
    return true;
  }

  std::string line_;  // the line being read
  Event event_;       // the event being read
  bool has_data_ = false;
};

// The columns tap prints of a row (docs/LIVE.md). Views into the parser: valid until its next
// document.
struct Row {
  std::string_view station;
  std::string_view window_start;
  std::string_view window_end;
  int64_t entries = 0;
  int64_t exits = 0;
  int64_t events = 0;
};

bool ParseRow(od::parser* parser, const simdjson::padded_string& json, Row* row) {
  od::document doc;
  od::object obj;
  return !parser->iterate(json).get(doc) && !doc.get_object().get(obj) &&
         !obj["station"].get_string().get(row->station) &&
         !obj["window_start"].get_string().get(row->window_start) &&
         !obj["window_end"].get_string().get(row->window_end) &&
         !obj["entries"].get_int64().get(row->entries) &&
         !obj["exits"].get_int64().get(row->exits) && !obj["events"].get_int64().get(row->events);
}

// A station is input data: control bytes would drive the terminal, so they print as '?'.
std::string Printable(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return out;
}

constexpr char kHeaderFormat[] = "%-6s  %-24s  %-20s  %-20s  %10s  %10s  %8s\n";
constexpr char kRowFormat[] = "%-6s  %-24s  %-20.*s  %-20.*s  %10lld  %10lld  %8lld\n";

struct Options {
  std::vector<std::string> stations;  // empty: every station
  bool closed_only = false;
  bool json = false;
};

class Tap {
 public:
  Tap(Url url, Options options, int stop_fd)
      : url_(std::move(url)), options_(std::move(options)), stop_fd_(stop_fd) {}

  // Connects, prints, reconnects; returns the exit code.
  int Run() {
    bool answered_once = false;
    auto give_up_at = Clock::now() + kRetryFor;
    for (;;) {
      std::string why;
      bool answered = false;  // this connection got its 200
      switch (Stream(&answered, &why)) {
        case Outcome::kDone:
          return kExitOk;
        case Outcome::kFailed:
          std::fprintf(stderr, "tap: %s\n", why.c_str());
          return kExitFailure;
        case Outcome::kLost:
          break;
      }
      if (!answered_once && !answered) {
        std::fprintf(stderr, "tap: cannot connect to %s: %s\n", url_.text.c_str(), why.c_str());
        return kExitFailure;
      }
      if (answered) {
        answered_once = true;
        give_up_at = Clock::now() + kRetryFor;
        std::fprintf(stderr, "tap: connection lost (%s), reconnecting\n", why.c_str());
      } else if (Clock::now() >= give_up_at) {
        std::fprintf(stderr, "tap: cannot reconnect to %s for %lld s: %s\n", url_.text.c_str(),
                     static_cast<long long>(kRetryFor.count()), why.c_str());
        return kExitFailure;
      }
      if (Wait(-1, kRetryEveryMs) == Ready::kStop) return kExitOk;
    }
  }

 private:
  enum class Outcome { kDone, kFailed, kLost };  // kDone: exit 0
  enum class Ready { kYes, kStop, kTimeout };

  Ready Wait(int fd, int timeout_ms) {
    pollfd fds[2] = {{stop_fd_, POLLIN, 0}, {fd, POLLIN, 0}};
    int n = 0;
    while ((n = poll(fds, 2, timeout_ms)) < 0 && errno == EINTR) {
    }
    if (fds[0].revents != 0) return Ready::kStop;
    return n == 0 ? Ready::kTimeout : Ready::kYes;
  }

  // One connection: request, headers, events, until it ends.
  Outcome Stream(bool* answered, std::string* why) {
    auto socket = Connect(url_);
    if (!socket.ok()) {
      *why = socket.status().message();
      if (socket.status().IsRetryable()) {
        *why += " (is turnstiled running with metrics or live enabled?)";
      }
      return Outcome::kLost;
    }
    const int fd = socket.value().fd();
    const bool resuming = !last_id_.empty();
    std::string request = "GET " + url_.path + " HTTP/1.1\r\nHost: " + url_.authority +
                          "\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n";
    if (resuming) request += "Last-Event-ID: " + last_id_ + "\r\n";
    request += "\r\n";
    if (!SendAll(fd, request)) {
      *why = std::strerror(errno);
      return Outcome::kLost;
    }

    std::string head;  // the status line and headers, as they arrive
    int status = 0;    // 0 until the headers are in
    bool chunked = false;
    Dechunker dechunker;
    std::string payload;     // dechunked bytes
    std::string error_body;  // the payload of an error status, whose first line is reported
    EventParser parser;
    Outcome outcome = Outcome::kLost;
    auto on_event = [&](const Event& e) { return OnEvent(e, resuming, &outcome, why); };
    int idle_ms = kFirstByteTimeoutMs;
    char buf[16384];
    for (;;) {
      const Ready ready = Wait(fd, idle_ms);
      if (ready == Ready::kStop) return Outcome::kDone;
      ssize_t n = 0;
      if (ready == Ready::kTimeout) {
        *why = "nothing received for " + base::FormatDuration(idle_ms);
      } else if ((n = recv(fd, buf, sizeof buf, 0)) < 0) {
        if (errno == EINTR) continue;
        *why = std::strerror(errno);
      } else if (n == 0) {
        *why = "the daemon closed the connection";
      }
      if (n <= 0) return status > 0 && status != 200 ? StatusError(head, error_body, why) : outcome;
      std::string_view bytes(buf, static_cast<size_t>(n));
      if (status == 0) {
        head.append(bytes);
        const size_t end = head.find("\r\n\r\n");
        if (end == std::string::npos) {
          if (head.size() <= kMaxHeaderBytes) continue;
          *why = url_.text + " answered with headers too large";
          return Outcome::kFailed;
        }
        std::string content_type;
        if (!ParseHead(std::string_view(head).substr(0, end + 2), &status, &chunked,
                       &content_type)) {
          *why = url_.text + " did not answer in HTTP/1.x";
          return Outcome::kFailed;
        }
        if (status == 200 && !content_type.starts_with("text/event-stream")) {
          *why = url_.text + " is not an event stream (Content-Type: " + content_type + ")";
          return Outcome::kFailed;
        }
        *answered = status == 200;
        bytes = std::string_view(head).substr(end + 4);        // head no longer changes
        idle_ms = status == 200 ? kFirstByteTimeoutMs : 1000;  // an error's payload is short
      }
      if (chunked) {
        payload.clear();
        if (!dechunker.Feed(bytes, &payload)) return Malformed(why);
        bytes = payload;
      }
      if (status != 200) {
        error_body.append(bytes);
        if (error_body.find('\n') != std::string::npos || error_body.size() > 4096) {
          return StatusError(head, error_body, why);
        }
        continue;
      }
      if (!parser.Feed(bytes, on_event)) {
        return outcome == Outcome::kLost ? Malformed(why) : outcome;
      }
      idle_ms = idle_ms_;
    }
  }

  Outcome Malformed(std::string* why) {
    *why = "the event stream is malformed";
    return Outcome::kLost;
  }

  // "URL answered 503 Service Unavailable: the first line of the payload".
  Outcome StatusError(std::string_view head, std::string_view body, std::string* why) {
    const std::string_view status_line = FirstLine(head);
    *why = url_.text + " answered " + std::string(status_line.substr(9));
    if (!FirstLine(body).empty()) *why += ": " + std::string(FirstLine(body));
    return Outcome::kFailed;
  }

  static bool ParseHead(std::string_view head, int* status, bool* chunked,
                        std::string* content_type) {
    const std::string_view status_line = FirstLine(head);
    if (!status_line.starts_with("HTTP/1.") || status_line.size() < 12 || status_line[8] != ' ') {
      return false;
    }
    const auto r = std::from_chars(status_line.data() + 9, status_line.data() + 12, *status);
    if (r.ec != std::errc() || r.ptr != status_line.data() + 12 || *status < 100) return false;
    for (size_t at = head.find('\n') + 1; at < head.size();) {
      std::string_view line = FirstLine(head.substr(at));
      at = head.find('\n', at) + 1;
      const size_t colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      std::string_view value = line.substr(colon + 1);
      while (value.starts_with(' ') || value.starts_with('\t')) value.remove_prefix(1);
      while (value.ends_with(' ') || value.ends_with('\t')) value.remove_suffix(1);
      if (IEquals(line.substr(0, colon), "Transfer-Encoding")) {
        *chunked = IEquals(value, "chunked");
      } else if (IEquals(line.substr(0, colon), "Content-Type")) {
        content_type->assign(value);
        for (char& c : *content_type) {
          c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
      }
    }
    return true;
  }

  // Returns false to stop reading this connection, with *outcome set.
  bool OnEvent(const Event& e, bool resuming, Outcome* outcome, std::string* why) {
    if (!e.id.empty() && e.id.find_first_not_of("0123456789") == std::string::npos) {
      last_id_ = e.id;
    }
    if (e.type == "hello") return OnHello(e.data, resuming, outcome, why);
    if (e.type == "gap") {
      const simdjson::padded_string json(e.data);
      od::document doc;
      int64_t after = 0;
      int64_t first_id = 0;
      if (!parser_.iterate(json).get(doc) && !doc["after"].get_int64().get(after) &&
          !doc["first_id"].get_int64().get(first_id)) {
        std::fprintf(stderr, "tap: %lld events were lost (the daemon's buffer moved on)\n",
                     static_cast<long long>(first_id - after - 1));
      }
      return true;
    }
    if (e.type == "end") {
      *outcome = Outcome::kDone;
      return false;
    }
    if (e.type != "close" && (e.type != "update" || options_.closed_only)) return true;
    const simdjson::padded_string json(e.data);
    Row row;
    if (!ParseRow(&parser_, json, &row)) {
      std::fprintf(stderr, "tap: skipped a %s event that is not a row: %s\n", e.type.c_str(),
                   e.data.c_str());
      return true;
    }
    if (!options_.stations.empty() && std::find(options_.stations.begin(), options_.stations.end(),
                                                row.station) == options_.stations.end()) {
      return true;
    }
    if (options_.json) {
      std::fwrite(e.data.data(), 1, e.data.size(), stdout);
      std::fputc('\n', stdout);
    } else {
      std::printf(kRowFormat, e.type.c_str(), Printable(row.station).c_str(),
                  static_cast<int>(row.window_start.size()), row.window_start.data(),
                  static_cast<int>(row.window_end.size()), row.window_end.data(),
                  static_cast<long long>(row.entries), static_cast<long long>(row.exits),
                  static_cast<long long>(row.events));
    }
    return Flush(outcome, why);
  }

  bool OnHello(const std::string& data, bool resuming, Outcome* outcome, std::string* why) {
    const simdjson::padded_string json(data);
    od::document doc;
    od::object window;
    std::string_view type;
    int64_t size_ms = 0;
    int64_t slide_ms = 0;
    int64_t heartbeat_ms = 0;
    int64_t last_id = 0;
    std::string shape;
    if (!parser_.iterate(json).get(doc) && !doc["window"].get_object().get(window) &&
        !window["type"].get_string().get(type) && !window["size_ms"].get_int64().get(size_ms) &&
        !window["slide_ms"].get_int64().get(slide_ms)) {
      shape = " (window " + std::string(type) + " " + base::FormatDuration(size_ms);
      if (slide_ms != size_ms) shape += " every " + base::FormatDuration(slide_ms);
      shape += ")";
    }
    if (!doc["heartbeat_ms"].get_int64().get(heartbeat_ms)) {
      idle_ms_ = static_cast<int>(std::clamp<int64_t>(5 * heartbeat_ms, 10000, 600000));
    }
    // A first connection starts from now; resuming from here after a loss keeps the windows
    // that close while tap is away.
    if (!resuming && !doc["last_id"].get_int64().get(last_id) && last_id > 0) {
      last_id_ = std::to_string(last_id);
    }
    std::fprintf(stderr, "tap: %s %s%s\n", resuming ? "reconnected to" : "connected to",
                 url_.text.c_str(), shape.c_str());
    if (!options_.json && !header_printed_) {
      header_printed_ = true;
      std::printf(kHeaderFormat, "EVENT", "STATION", "WINDOW_START", "WINDOW_END", "ENTRIES",
                  "EXITS", "EVENTS");
      return Flush(outcome, why);
    }
    return true;
  }

  // Standard output closed (EPIPE) ends tap quietly; any other write error fails it.
  bool Flush(Outcome* outcome, std::string* why) {
    if (std::fflush(stdout) == 0) return true;
    if (errno == EPIPE) {
      *outcome = Outcome::kDone;
    } else {
      *why = std::string("cannot write to standard output: ") + std::strerror(errno);
      *outcome = Outcome::kFailed;
    }
    return false;
  }

  // Constant after construction.
  const Url url_;
  const Options options_;
  const int stop_fd_;  // readable once SIGINT or SIGTERM arrived

  // Carried from one connection to the next.
  std::string last_id_;  // digits; "" before the first id
  bool header_printed_ = false;
  int idle_ms_ = kFirstByteTimeoutMs;  // silence longer than this is a lost connection
  od::parser parser_;
};

}  // namespace

int TapMain(int argc, char** argv) {
  CLI::App app(
      "Print a running daemon's windows as they update and close, read from its /events "
      "stream (docs/LIVE.md).",
      "tap");
  std::string url_text = "http://127.0.0.1:9464/events";
  Options options;
  std::string format = "table";
  app.add_option("--url", url_text, "the daemon's /events: http://host:port/path")
      ->capture_default_str();
  app.add_option("--station", options.stations, "show only this station (exact name; repeatable)");
  app.add_flag("--closed-only", options.closed_only,
               "show only windows as they close, not the open windows' updates");
  app.add_option("--format", format,
                 "table (aligned columns) or json (rows as the daemon sent them)")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  app.footer(
      "A lost connection is resumed with Last-Event-ID (retried every 0.5 s for up to 30 s).\n"
      "Exit status: 0 when the daemon stops (it sends `end`), on SIGINT or SIGTERM, or when\n"
      "standard output is closed; 1 when the daemon cannot be reached or answers with an error\n"
      "status; 2 on a usage error.");
  CLI11_PARSE(app, argc, argv);
  options.json = format == "json";
  auto url = ParseUrl(url_text);
  if (!url.ok()) {
    std::fprintf(stderr, "tap: --url %s: %s\n", url_text.c_str(), url.status().message().c_str());
    return kExitUsage;
  }

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
  const int stop_fd = signalfd(-1, &stop_signals, SFD_CLOEXEC);
  if (stop_fd < 0) {
    std::fprintf(stderr, "tap: signalfd: %s\n", std::strerror(errno));
    return kExitFailure;
  }
  signal(SIGPIPE, SIG_IGN);
  Tap tap(std::move(url.value()), std::move(options), stop_fd);
  const int code = tap.Run();
  close(stop_fd);
  return code;
}

}  // namespace turnstiled::app
