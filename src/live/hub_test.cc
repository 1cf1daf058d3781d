#include "live/hub.h"

#include <doctest/doctest.h>

#include <string>
#include <thread>
#include <vector>

#include "sink/row_format.h"

using namespace turnstiled;
using std::chrono::milliseconds;
using turnstiled::live::Hub;
using turnstiled::live::HubOptions;
using turnstiled::live::Kind;

namespace {

window::WindowRow Row(std::string station, bool final = true) {
  window::WindowRow r;
  r.station = std::move(station);
  r.window_start_ms = 1704513600000;  // 2024-01-06T04:00:00Z
  r.window_end_ms = r.window_start_ms + 4 * 3600 * 1000;
  r.entries = 10;
  r.exits = 20;
  r.events = 3;
  r.final = final;
  r.first_event_ms = r.window_start_ms;
  r.last_event_ms = r.window_start_ms + 60000;
  r.source = "turnstile-stream-2";
  return r;
}

HubOptions Small(size_t events, int clients = 4) {
  HubOptions o;
  o.buffer_events = events;
  o.max_clients = clients;
  o.first_id = 1;
  return o;
}

// Pulls like Hub::Pull, with the frames' bytes appended to *out.
Hub::PullResult Pull(Hub& hub, uint64_t* cursor, std::string* out, size_t max_bytes,
                     uint64_t* first = nullptr) {
  std::vector<Hub::Frames> frames;
  const Hub::PullResult r = hub.Pull(cursor, &frames, max_bytes, milliseconds(1), first);
  for (const auto& f : frames) out->append(f.view());
  return r;
}

// The data lines of the frames in `sse`, in order.
std::vector<std::string> DataLines(const std::string& sse) {
  std::vector<std::string> out;
  size_t at = 0;
  while ((at = sse.find("data: ", at)) != std::string::npos) {
    const size_t end = sse.find('\n', at);
    out.push_back(sse.substr(at + 6, end - at - 6));
    at = end;
  }
  return out;
}

uint64_t joined = 0;  // where a Join() says a client's stream starts

}  // namespace

TEST_CASE("nothing is recorded while nobody watches") {
  Hub hub(Small(16), nullptr, {});
  hub.Publish(Kind::kClose, {Row("A")});
  hub.Sync();
  CHECK(hub.last_id() == 0);
  CHECK_FALSE(hub.watching());
}

TEST_CASE("an event's data is the file sink's jsonl row plus its source") {
  Hub hub(Small(16), nullptr, {});
  REQUIRE(hub.Join(&joined) == Hub::Admit::kOk);
  const window::WindowRow row = Row("<img src=x onerror=alert(1)> \"q\"");
  hub.Publish(Kind::kClose, {row});
  hub.Sync();
  uint64_t cursor = 0;
  std::string out;
  REQUIRE(Pull(hub, &cursor, &out, 1 << 20) == Hub::PullResult::kEvents);
  CHECK(cursor == 1);
  CHECK(out.rfind("id: 1\nevent: close\ndata: ", 0) == 0);
  std::string expected;
  sink::AppendJsonRow(row, &expected);
  expected.resize(expected.size() - 2);  // "}\n"
  expected += ",\"source\":\"turnstile-stream-2\"}";
  CHECK(DataLines(out) == std::vector<std::string>{expected});
  hub.Leave(false);
}

TEST_CASE("close events carry final rows only; updates carry the open ones") {
  Hub hub(Small(16), nullptr, {});
  REQUIRE(hub.Join(&joined) == Hub::Admit::kOk);
  hub.Publish(Kind::kClose, {Row("A", false), Row("B", true)});
  hub.Sync();
  hub.Publish(Kind::kUpdate, {Row("C", false)});
  hub.Sync();
  uint64_t cursor = 0;
  std::string out;
  REQUIRE(Pull(hub, &cursor, &out, 1 << 20) == Hub::PullResult::kEvents);
  CHECK(cursor == 2);
  CHECK(out.find("\"station\":\"A\"") == std::string::npos);
  CHECK(out.find("id: 1\nevent: close\n") != std::string::npos);
  CHECK(out.find("id: 2\nevent: update\n") != std::string::npos);
  hub.Leave(false);
}

TEST_CASE("ids start at the time of start, so a later run's ids are higher than an earlier's") {
  HubOptions o = Small(16);
  o.first_id = 0;
  Hub earlier(o, nullptr, {});
  REQUIRE(earlier.Join(&joined) == Hub::Admit::kOk);
  earlier.Publish(Kind::kClose, {Row("A"), Row("B")});
  earlier.Sync();
  const uint64_t old_id = earlier.last_id();
  CHECK(old_id > 1600000000000000);              // microseconds since 1970, after 2020
  std::this_thread::sleep_for(milliseconds(2));  // a restart takes longer than that
  Hub later(o, nullptr, {});
  REQUIRE(later.Join(&joined) == Hub::Admit::kOk);
  CHECK(later.last_id() >= old_id);
  later.Publish(Kind::kClose, {Row("C")});
  later.Sync();
  // A client resuming with the earlier run's id is told that it missed events.
  uint64_t cursor = old_id;
  uint64_t first = 0;
  std::string out;
  CHECK(Pull(later, &cursor, &out, 1 << 20, &first) == Hub::PullResult::kGap);
  CHECK(first == later.last_id());
  earlier.Leave(false);
  later.Leave(false);
}

TEST_CASE("a cursor older than the ring gets a gap with the oldest id kept") {
  Hub hub(Small(16), nullptr, {});
  REQUIRE(hub.Join(&joined) == Hub::Admit::kOk);
  std::vector<window::WindowRow> rows;
  for (int i = 0; i < 40; ++i) rows.push_back(Row(std::string("S").append(std::to_string(i))));
  hub.Publish(Kind::kClose, rows);
  hub.Sync();
  CHECK(hub.last_id() == 40);
  uint64_t cursor = 3;
  uint64_t first = 0;
  std::string out;
  REQUIRE(Pull(hub, &cursor, &out, 1 << 20, &first) == Hub::PullResult::kGap);
  CHECK(first == 25);
  CHECK(out.empty());
  cursor = first - 1;
  REQUIRE(Pull(hub, &cursor, &out, 1 << 20, &first) == Hub::PullResult::kEvents);
  CHECK(cursor == 40);
  CHECK(DataLines(out).size() == 16);
  CHECK(out.rfind("id: 25\n", 0) == 0);
  hub.Leave(false);
}

TEST_CASE("a pull is bounded by max_bytes and goes on where it stopped") {
  Hub hub(Small(64), nullptr, {});
  REQUIRE(hub.Join(&joined) == Hub::Admit::kOk);
  std::vector<window::WindowRow> rows(10, Row("S"));
  hub.Publish(Kind::kClose, rows);
  hub.Sync();
  uint64_t cursor = 0;
  std::string out;
  REQUIRE(Pull(hub, &cursor, &out, 1) == Hub::PullResult::kEvents);
  CHECK(cursor == 1);
  REQUIRE(Pull(hub, &cursor, &out, 1 << 20) == Hub::PullResult::kEvents);
  CHECK(cursor == 10);
  CHECK(DataLines(out).size() == 10);
  CHECK(Pull(hub, &cursor, &out, 1 << 20) == Hub::PullResult::kTimeout);
  hub.Leave(false);
}

TEST_CASE("past max_clients a client is refused; a join asks the shards for every open window") {
  Hub hub(Small(16, 2), nullptr, {});
  const uint64_t g0 = hub.snapshot_generation();
  CHECK(hub.Join(&joined) == Hub::Admit::kOk);
  CHECK(hub.Join(&joined) == Hub::Admit::kOk);
  CHECK(hub.snapshot_generation() == g0 + 2);
  CHECK(hub.Join(&joined) == Hub::Admit::kFull);
  hub.Leave(false);
  CHECK(hub.Join(&joined) == Hub::Admit::kOk);
  hub.Leave(false);
  hub.Leave(false);
  CHECK_FALSE(hub.watching());
}

TEST_CASE("after the last client leaves, closes are kept for a while so that it can resume") {
  HubOptions o = Small(16);
  Hub hub(o, nullptr, {});
  REQUIRE(hub.Join(&joined) == Hub::Admit::kOk);
  hub.Leave(false);
  hub.Publish(Kind::kClose, {Row("A")});
  hub.Sync();
  CHECK(hub.last_id() == 1);

  o.keep_after_last_client = milliseconds(0);
  Hub gone(o, nullptr, {});
  REQUIRE(gone.Join(&joined) == Hub::Admit::kOk);
  gone.Leave(false);
  gone.Publish(Kind::kClose, {Row("A")});
  gone.Sync();
  CHECK(gone.last_id() == 0);
}

TEST_CASE("close ends the stream after what was published, and refuses new clients") {
  Hub hub(Small(16), nullptr, {});
  REQUIRE(hub.Join(&joined) == Hub::Admit::kOk);
  hub.Publish(Kind::kClose, {Row("A")});
  hub.Sync();
  hub.Close();
  hub.Publish(Kind::kClose, {Row("B")});  // after the end: not sent
  uint64_t cursor = 0;
  std::string out;
  CHECK(Pull(hub, &cursor, &out, 1 << 20) == Hub::PullResult::kEvents);
  CHECK(Pull(hub, &cursor, &out, 1 << 20) == Hub::PullResult::kEnded);
  CHECK(DataLines(out).size() == 1);
  hub.Leave(false);
  CHECK(hub.WaitForClients(milliseconds(0)));
  // A client that comes back after the end still gets the tail it resumes from, then the end.
  REQUIRE(hub.Join(&joined) == Hub::Admit::kOk);
  cursor = 0;
  out.clear();
  CHECK(Pull(hub, &cursor, &out, 1 << 20) == Hub::PullResult::kEvents);
  CHECK(Pull(hub, &cursor, &out, 1 << 20) == Hub::PullResult::kEnded);
  hub.Leave(false);
}

TEST_CASE("heartbeats report the pipeline's figures; hello describes the window") {
  HubOptions o = Small(16);
  o.window_json = R"({"type":"tumbling","size_ms":14400000})";
  Hub hub(o, nullptr, [] {
    live::Stats st;
    st.watermark_ms = 1704513600000;
    st.has_lag = true;
    st.lag = 42;
    st.records = 1000;
    st.open_windows = 7;
    return st;
  });
  const std::string hb = hub.HeartbeatFrame();
  CHECK(hb.rfind("event: heartbeat\ndata: {", 0) == 0);
  CHECK(hb.find("\"watermark\":\"2024-01-06T04:00:00Z\"") != std::string::npos);
  CHECK(hb.find("\"lag\":42") != std::string::npos);
  CHECK(hb.find("\"records\":1000") != std::string::npos);
  CHECK(hb.find("\"open_windows\":7") != std::string::npos);
  const std::string hello = hub.HelloFrame(41);
  CHECK(hello.find("event: hello\n") != std::string::npos);
  CHECK(hello.find(R"("window":{"type":"tumbling","size_ms":14400000})") != std::string::npos);
  CHECK(hello.find(R"("last_id":41})") != std::string::npos);
  Hub files(o, nullptr, [] { return live::Stats{}; });
  const std::string none = files.HeartbeatFrame();
  CHECK(none.find("\"watermark\":null") != std::string::npos);
  CHECK(none.find("\"lag\":null") != std::string::npos);
}

TEST_CASE("closes are encoded on the hub's own thread, not the publisher's") {
  Hub hub(Small(16), nullptr, {});
  REQUIRE(hub.Join(&joined) == Hub::Admit::kOk);
  hub.Publish(Kind::kClose, {Row("A"), Row("B")});
  uint64_t cursor = 0;
  std::vector<Hub::Frames> frames;
  // The encoder runs at the lowest priority: on a busy machine it may take a moment.
  for (int i = 0; i < 600 && cursor < 2; ++i) {
    hub.Pull(&cursor, &frames, 1 << 20, milliseconds(100), nullptr);
  }
  CHECK(cursor == 2);
  CHECK(hub.last_id() == 2);
  hub.Leave(false);
}

TEST_CASE("more waiting to be encoded than the ring holds: the oldest are skipped, as a gap") {
  HubOptions o = Small(16);
  o.encoder_thread = false;
  Hub hub(o, nullptr, {});
  REQUIRE(hub.Join(&joined) == Hub::Admit::kOk);
  hub.Publish(Kind::kClose, std::vector<window::WindowRow>(3, Row("A")));
  REQUIRE(hub.EncodeOne());  // ids 1-3
  hub.Publish(Kind::kClose, std::vector<window::WindowRow>(6, Row("B")));
  hub.Publish(Kind::kClose, std::vector<window::WindowRow>(6, Row("C")));
  hub.Publish(Kind::kClose, std::vector<window::WindowRow>(6, Row("D")));  // 18 wait: B goes
  REQUIRE(hub.EncodeOne());  // ids 4-9 skipped, C is 10-15
  CHECK(hub.last_id() == 15);
  uint64_t cursor = 0;
  uint64_t first = 0;
  std::string out;
  // What came before the skipped events, then the gap, then what came after.
  REQUIRE(Pull(hub, &cursor, &out, 1 << 20, &first) == Hub::PullResult::kEvents);
  CHECK(cursor == 3);
  CHECK(DataLines(out).size() == 3);
  REQUIRE(Pull(hub, &cursor, &out, 1 << 20, &first) == Hub::PullResult::kGap);
  CHECK(first == 10);
  cursor = first - 1;
  out.clear();
  REQUIRE(Pull(hub, &cursor, &out, 1 << 20, &first) == Hub::PullResult::kEvents);
  CHECK(cursor == 15);
  CHECK(out.rfind("id: 10\nevent: close\n", 0) == 0);
  CHECK(out.find("\"station\":\"C\"") != std::string::npos);
  REQUIRE(hub.EncodeOne());  // D: 16-21
  CHECK_FALSE(hub.EncodeOne());
  out.clear();
  REQUIRE(Pull(hub, &cursor, &out, 1 << 20, &first) == Hub::PullResult::kEvents);
  CHECK(cursor == 21);
  CHECK(out.find("\"station\":\"D\"") != std::string::npos);
  // A client further back than the ring is sent past the skipped events, not into them.
  hub.Publish(Kind::kClose, std::vector<window::WindowRow>(10, Row("E")));
  hub.Publish(Kind::kClose, std::vector<window::WindowRow>(10, Row("F")));  // E goes
  hub.Sync();  // 22-31 skipped, F is 32-41
  cursor = 21;
  REQUIRE(Pull(hub, &cursor, &out, 1 << 20, &first) == Hub::PullResult::kGap);
  CHECK(first == 32);
  hub.Leave(false);
}

TEST_CASE("close encodes what waits, then ends the stream") {
  HubOptions o = Small(16);
  o.encoder_thread = false;
  Hub hub(o, nullptr, {});
  REQUIRE(hub.Join(&joined) == Hub::Admit::kOk);
  hub.Publish(Kind::kClose, {Row("A"), Row("B")});
  hub.Close();
  hub.Publish(Kind::kClose, {Row("C")});
  CHECK_FALSE(hub.EncodeOne());
  uint64_t cursor = 0;
  std::string out;
  CHECK(Pull(hub, &cursor, &out, 1 << 20) == Hub::PullResult::kEvents);
  CHECK(Pull(hub, &cursor, &out, 1 << 20) == Hub::PullResult::kEnded);
  CHECK(DataLines(out).size() == 2);
  hub.Leave(false);
}
