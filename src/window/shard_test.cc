#include "window/shard.h"

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <tuple>

using namespace turnstiled;
using namespace turnstiled::window;

namespace {

constexpr int64_t kH = 3600 * 1000;

struct Collector : ShardOutput {
  std::vector<WindowRow> rows;
  std::vector<int64_t> late_offsets;
  std::vector<DropReason> dropped;
  int64_t last_watermark = kNoTime;
  void Emit(int, std::vector<WindowRow>&& r, int64_t w, int64_t) override {
    for (auto& row : r) rows.push_back(std::move(row));
    last_watermark = w;
  }
  void Dropped(DropReason reason, const RecordBatch&, const RoutedRecord& r) override {
    dropped.push_back(reason);
    if (reason == DropReason::kLate) late_offsets.push_back(r.offset);
  }
  // (station, start) -> (entries, exits, events)
  std::map<std::pair<std::string, int64_t>, std::tuple<int64_t, int64_t, int64_t>> Table() const {
    std::map<std::pair<std::string, int64_t>, std::tuple<int64_t, int64_t, int64_t>> t;
    for (const auto& r : rows) t[{r.station, r.window_start_ms}] = {r.entries, r.exits, r.events};
    return t;
  }
};

struct Feed {
  RecordBatch batch;
  int64_t next_offset = 0;
  int32_t partition = 0;
  Feed& Part(int32_t p) {
    partition = p;
    return *this;
  }
  Feed& Add(std::string_view station, std::string_view device, int64_t t, int64_t e, int64_t x) {
    RoutedRecord r{};
    r.station_off = batch.Append(station);
    r.station_len = static_cast<uint32_t>(station.size());
    r.device_off = batch.Append(device);
    r.device_len = static_cast<uint32_t>(device.size());
    r.station_hash = base::StringHash(station);
    r.offset = next_offset++;
    r.partition = partition;
    r.event_ms = t;
    r.entries = e;
    r.exits = x;
    batch.records.push_back(r);
    return *this;
  }
  // Another reading of the last record's device and station, sharing its strings in the
  // batch, as the router sends a device's consecutive readings.
  Feed& Again(int64_t t, int64_t e, int64_t x) {
    RoutedRecord r = batch.records.back();
    r.offset = next_offset++;
    r.event_ms = t;
    r.entries = e;
    r.exits = x;
    batch.records.push_back(r);
    return *this;
  }
  Feed& Progress(int64_t frontier, bool finished = false, bool idle = false) {
    batch.progress = SourceProgress{frontier, idle, finished};
    return *this;
  }
  void SendTo(Shard& s) {
    s.Process(batch);
    batch.Clear();
  }
};

ShardOptions Tumbling4h(config::CounterMode mode = config::CounterMode::kCumulative) {
  ShardOptions o;
  o.window.size = 4 * kH;
  o.window.allowed_lateness = kH;
  o.counters = mode;
  o.max_delta = 10000;
  return o;
}

}  // namespace

TEST_CASE("the cumulative rule: baseline, duplicates, out of order, backwards and resets") {
  Collector out;
  Shard shard(0, Tumbling4h(), &out);
  Feed f;
  f.Add("59 ST", "A", 0, 1000, 500)             // baseline: 0/0, one event
      .Add("59 ST", "A", 1 * kH, 1100, 520)     // +100/+20
      .Add("59 ST", "A", 1 * kH, 9999, 9999)    // same time: duplicate, dropped
      .Add("59 ST", "A", kH / 2, 1, 1)          // earlier: out of order, dropped
      .Add("59 ST", "A", 2 * kH, 1090, 530)     // backwards by 10: counts 10; +10
      .Add("59 ST", "A", 3 * kH, 5000000, 535)  // entries jump > max_delta: 0; exits +5
      .Add("59 ST", "A", 5 * kH, 5000050, 540)  // next window: +50/+5
      .Progress(kNoTime, /*finished=*/true)
      .SendTo(shard);
  auto t = out.Table();
  CHECK(t[{"59 ST", 0}] == std::tuple<int64_t, int64_t, int64_t>{110, 35, 4});
  CHECK(t[{"59 ST", 4 * kH}] == std::tuple<int64_t, int64_t, int64_t>{50, 5, 1});
  CHECK(shard.stats().dropped[static_cast<int>(DropReason::kDuplicate)] == 1);
  CHECK(shard.stats().dropped[static_cast<int>(DropReason::kOutOfOrder)] == 1);
  CHECK(out.dropped == std::vector<DropReason>{DropReason::kDuplicate, DropReason::kOutOfOrder});
  CHECK(shard.stats().counter_resets == 1);
}

TEST_CASE("readings that share their strings in a batch count like any others") {
  Collector out;
  Shard shard(0, Tumbling4h(), &out);
  Feed f;
  f.Add("59 ST", "A", 0, 1000, 500)
      .Again(1 * kH, 1010, 501)  // +10/+1
      .Add("59 ST", "B", 0, 70, 70)
      .Again(1 * kH, 72, 70)  // +2/+0
      // A moves to another station, and that reading is a duplicate: it is dropped before the
      // device's station is looked at. The next one shares its strings and counts at the new
      // station all the same.
      .Add("GRD CNTRL", "A", 1 * kH, 1010, 501)
      .Again(2 * kH, 1025, 504)                  // +15/+3
      .Again(2 * kH, 1, 1)                       // duplicate
      .Again(3 * kH, 1030, 504)                  // +5/+0
      .Add("59 ST", "A", 3 * kH + 1, 1031, 505)  // and back: +1/+1
      .SendTo(shard);
  // The next batch reuses the same offsets for other strings.
  f.Add("GRD CNTRL", "B", 2 * kH, 80, 75)        // +8/+5
      .Again(3 * kH, 81, 75)                     // +1/+0
      .Add("59 ST", "A", 3 * kH + 2, 1033, 505)  // +2/+0
      .SendTo(shard);
  // Two one-record batches whose strings are at the same offsets, for different devices.
  f.Add("59 ST", "A", 3 * kH + 3, 1034, 505).SendTo(shard);  // +1/+0
  f.Add("59 ST", "B", 3 * kH + 3, 82, 76)                    // +1/+1, B's own baseline
      .Progress(kNoTime, /*finished=*/true)
      .SendTo(shard);
  auto t = out.Table();
  CHECK(t[{"59 ST", 0}] == std::tuple<int64_t, int64_t, int64_t>{17, 3, 8});
  CHECK(t[{"GRD CNTRL", 0}] == std::tuple<int64_t, int64_t, int64_t>{29, 8, 4});
  CHECK(t.size() == 2);
  CHECK(shard.stats().dropped[static_cast<int>(DropReason::kDuplicate)] == 2);
}

TEST_CASE("deltas are computed in 64 bits across the 2^31 boundary") {
  Collector out;
  Shard shard(0, Tumbling4h(), &out);
  Feed f;
  f.Add("S", "D", 0, 2147483640, 0)
      .Add("S", "D", kH, 2147483650LL, 0)
      .Progress(kNoTime, true)
      .SendTo(shard);
  CHECK(std::get<0>(out.Table()[{"S", 0}]) == 10);
}

TEST_CASE("delta mode sums counts as they are") {
  Collector out;
  Shard shard(0, Tumbling4h(config::CounterMode::kDelta), &out);
  Feed f;
  f.Add("S", "D", 0, 5, 1)
      .Add("S", "D", 0, 7, 2)
      .Add("S", "E", kH, 1, 1)
      .Progress(kNoTime, true)
      .SendTo(shard);
  CHECK(out.Table()[{"S", 0}] == std::tuple<int64_t, int64_t, int64_t>{13, 4, 3});
}

TEST_CASE("a window closes only when the watermark passes its end") {
  Collector out;
  ShardOptions o = Tumbling4h(config::CounterMode::kDelta);
  Shard shard(0, o, &out);
  Feed f;
  f.Add("S", "D", 1 * kH, 1, 0).Progress(1 * kH).SendTo(shard);
  CHECK(out.rows.empty());
  // Frontier 4h59: watermark 3h59 < end 4h, still open.
  f.Progress(5 * kH - 1).SendTo(shard);
  CHECK(out.rows.empty());
  CHECK(shard.open_windows() == 1);
  // Frontier 5h: watermark 4h == end: closes, once, as final.
  f.Progress(5 * kH).SendTo(shard);
  REQUIRE(out.rows.size() == 1);
  CHECK(out.rows[0].final);
  CHECK(out.rows[0].window_end_ms == 4 * kH);
  CHECK(shard.open_windows() == 0);
  f.Progress(9 * kH).SendTo(shard);
  CHECK(out.rows.size() == 1);
}

TEST_CASE("a record whose windows have all closed is dropped as late and reported") {
  Collector out;
  Shard shard(0, Tumbling4h(config::CounterMode::kDelta), &out);
  Feed f;
  f.Add("S", "D", 1 * kH, 1, 0).Progress(10 * kH).SendTo(shard);
  f.next_offset = 42;
  f.Add("S", "D", 2 * kH, 5, 0).Progress(10 * kH).SendTo(shard);  // window [0,4h) closed at 9h
  CHECK(out.late_offsets == std::vector<int64_t>{42});
  CHECK(shard.stats().dropped[static_cast<int>(DropReason::kLate)] == 1);
  f.Add("S", "D", 8 * kH, 5, 0).Progress(10 * kH, true).SendTo(shard);  // [8h,12h) still open
  CHECK(out.Table()[{"S", 8 * kH}] == std::tuple<int64_t, int64_t, int64_t>{5, 0, 1});
}

TEST_CASE("hopping windows: a record counts in size/slide windows") {
  Collector out;
  ShardOptions o = Tumbling4h(config::CounterMode::kDelta);
  o.window.type = config::WindowType::kHopping;
  o.window.size = kH;
  o.window.slide = kH / 4;
  Shard shard(0, o, &out);
  Feed f;
  f.Add("S", "D", kH + 1, 3, 1).Progress(kNoTime, true).SendTo(shard);
  auto t = out.Table();
  CHECK(t.size() == 4);
  CHECK(t.count({"S", kH}) == 1);
  CHECK(t.count({"S", kH / 4}) == 1);
  CHECK(t.count({"S", 0}) == 0);
}

TEST_CASE("records in any order land in the windows the rule gives, with or without hopping") {
  // The shard remembers the last window start and steps to the next one without dividing;
  // jumps back, far ahead, across the epoch and at the windows' edges must still be exact.
  const int64_t m = 60 * 1000;
  const int64_t times[] = {
      7 * kH + 5,      7 * kH + 6,      8 * kH,         12 * kH - 1, 12 * kH,
      3 * kH,          4 * kH - 1,      4 * kH,         -1,          0,
      -5 * kH - 7,     -5 * kH + 1,     9 * kH + 7,     13 * kH,     1000 * kH + 3,
      1001 * kH,       1002 * kH - 1,   7 * kH + 5 + m, -1000 * kH,  2 * kH,
      2 * kH + 15 * m, 2 * kH + 30 * m,
  };
  struct Shape {
    config::WindowType type;
    int64_t size, slide, offset;
  };
  for (const Shape& w : {Shape{config::WindowType::kTumbling, 4 * kH, 0, 0},
                         Shape{config::WindowType::kTumbling, 4 * kH, 0, 13 * m},
                         Shape{config::WindowType::kHopping, 4 * kH, kH, 7 * m},
                         Shape{config::WindowType::kHopping, kH, 15 * m, 0}}) {
    CAPTURE(w.size);
    CAPTURE(w.slide);
    CAPTURE(w.offset);
    Collector out;
    ShardOptions o = Tumbling4h(config::CounterMode::kDelta);
    o.window.type = w.type;
    o.window.size = w.size;
    o.window.slide = w.slide;
    o.window.offset = w.offset;
    Shard shard(0, o, &out);
    const int64_t slide = o.window.EffectiveSlide();
    std::map<std::pair<std::string, int64_t>, std::tuple<int64_t, int64_t, int64_t>> want;
    Feed f;
    int64_t n = 1;
    for (const int64_t t : times) {
      f.Add("S", "D", t, n, 0);
      // Every start offset + k*slide with start <= t < start + size, found by counting.
      for (int64_t s = w.offset - 2000 * kH; s <= t; s += slide) {
        if (t < s + w.size) std::get<0>(want[{"S", s}]) += n, std::get<2>(want[{"S", s}]) += 1;
      }
      ++n;
    }
    f.Progress(kNoTime, true).SendTo(shard);
    CHECK(out.Table() == want);
  }
}

TEST_CASE("the watermark is the minimum over sources, and idle sources do not hold it back") {
  Collector out;
  ShardOptions o = Tumbling4h(config::CounterMode::kDelta);
  o.num_sources = 2;
  Shard shard(0, o, &out);
  Feed a;
  Feed b;
  b.batch.source = 1;
  a.Add("S", "D", kH, 1, 0).Progress(20 * kH).SendTo(shard);
  CHECK(out.rows.empty());  // source 1 has not spoken: nothing may close
  b.Progress(3 * kH).SendTo(shard);
  CHECK(out.rows.empty());  // min is 3h, watermark 2h
  b.Progress(3 * kH, false, /*idle=*/true).SendTo(shard);
  CHECK(out.rows.size() == 1);  // source 1 idle: watermark 19h
  CHECK(shard.watermark() == 19 * kH);
}

TEST_CASE("with every source idle every window up to the highest event time closes") {
  Collector out;
  ShardOptions o = Tumbling4h(config::CounterMode::kDelta);
  o.window.allowed_lateness = 0;
  o.num_sources = 2;
  Shard shard(0, o, &out);
  Feed a;
  Feed b;
  b.batch.source = 1;
  a.Add("S", "D", kH, 1, 0).Add("S", "D", 9 * kH, 1, 0).Progress(9 * kH).SendTo(shard);
  b.Add("T", "E", 2 * kH, 1, 0).Progress(2 * kH).SendTo(shard);
  CHECK(out.rows.empty());  // min is 2h
  a.Progress(9 * kH, false, /*idle=*/true).SendTo(shard);
  CHECK(out.rows.empty());  // source 1 still active at 2h
  b.Progress(2 * kH, false, /*idle=*/true).SendTo(shard);
  // Both idle: the stream has paused; everything through the window holding 9h closes.
  CHECK(shard.watermark() == 12 * kH);
  CHECK(out.rows.size() == 3);  // [0h, 4h) for S and T, [8h, 12h) for S
  b.Progress(kNoTime, false, /*idle=*/true).SendTo(shard);
  CHECK(shard.watermark() == 12 * kH);  // nothing new: no change
}

TEST_CASE("a bounded input emits every window at its end and nothing is late before it") {
  Collector out;
  Shard shard(0, Tumbling4h(config::CounterMode::kDelta), &out);
  Feed f;
  f.Add("S", "D", 100 * kH, 1, 0).Progress(kNoTime).SendTo(shard);
  f.Add("S", "D", 1 * kH, 1, 0).Progress(kNoTime).SendTo(shard);  // far behind: not late
  CHECK(out.late_offsets.empty());
  f.Progress(kNoTime, true).SendTo(shard);
  CHECK(out.rows.size() == 2);
}

TEST_CASE("emit update sends changed open windows as non-final rows") {
  Collector out;
  ShardOptions o = Tumbling4h(config::CounterMode::kDelta);
  o.window.emit = config::EmitMode::kUpdate;
  Shard shard(0, o, &out);
  Feed f;
  f.Add("S", "D", kH, 2, 0).Progress(kH).SendTo(shard);
  shard.EmitUpdates();
  REQUIRE(out.rows.size() == 1);
  CHECK_FALSE(out.rows[0].final);
  shard.EmitUpdates();
  CHECK(out.rows.size() == 1);  // nothing changed
  f.Progress(kNoTime, true).SendTo(shard);
  REQUIRE(out.rows.size() == 2);
  CHECK(out.rows[1].final);
  CHECK(out.rows[1].entries == 2);
}

TEST_CASE("the live view collects the open windows changed since its last call, or all of them") {
  Collector out;
  Shard shard(0, Tumbling4h(config::CounterMode::kDelta), &out);
  Feed f;
  f.Add("A", "D1", kH, 2, 1).Add("B", "D2", kH, 5, 0).Progress(kH).SendTo(shard);
  std::vector<WindowRow> rows;
  shard.CollectLive(false, &rows);
  REQUIRE(rows.size() == 2);
  CHECK_FALSE(rows[0].final);
  rows.clear();
  shard.CollectLive(false, &rows);
  CHECK(rows.empty());  // nothing changed since
  f.Add("B", "D2", kH + 1000, 3, 0).Progress(kH + 1000).SendTo(shard);
  shard.CollectLive(false, &rows);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].station == "B");
  CHECK(rows[0].entries == 8);
  rows.clear();
  shard.CollectLive(true, &rows);  // a new client: every open window
  CHECK(rows.size() == 2);
  CHECK(out.rows.empty());  // collecting emits nothing to the sinks
}

TEST_CASE("first and last event times are exact in every window, at its edges and after a move") {
  // Kept as offsets from the window's start: check the first and the last millisecond of a
  // window, a record in several hopping windows, and the longest window.size allowed.
  auto first_last = [](const std::vector<WindowRow>& rows) {
    std::map<int64_t, std::pair<int64_t, int64_t>> m;  // start -> (first, last)
    for (const auto& r : rows) m[r.window_start_ms] = {r.first_event_ms, r.last_event_ms};
    return m;
  };
  {
    Collector out;
    ShardOptions o = Tumbling4h(config::CounterMode::kDelta);
    o.window.type = config::WindowType::kHopping;
    o.window.size = 2 * kH;
    o.window.slide = kH;
    Shard shard(0, o, &out);
    Feed f;
    f.Add("S", "D", 10 * kH + 5, 1, 1)
        .Add("S", "D", 11 * kH, 1, 1)      // the first ms of [11h, 13h)
        .Add("S", "D", 12 * kH - 1, 1, 1)  // the last ms of [10h, 12h)
        .Add("S", "D", 10 * kH + 7, 1, 1)
        .Progress(kNoTime, true)
        .SendTo(shard);
    const auto m = first_last(out.rows);
    CHECK(m.size() == 3);
    CHECK(m.at(9 * kH) == std::pair{10 * kH + 5, 10 * kH + 7});
    CHECK(m.at(10 * kH) == std::pair{10 * kH + 5, 12 * kH - 1});
    CHECK(m.at(11 * kH) == std::pair{11 * kH, 12 * kH - 1});
  }
  {
    Collector out;
    ShardOptions o = Tumbling4h(config::CounterMode::kDelta);
    o.window.size = config::kMaxWindowSize;
    Shard shard(0, o, &out);
    const int64_t start = 400 * config::kMaxWindowSize;
    Feed f;
    f.Add("S", "D", start + config::kMaxWindowSize - 1, 1, 1)
        .Add("S", "D", start, 1, 1)
        .Progress(kNoTime, true)
        .SendTo(shard);
    REQUIRE(out.rows.size() == 1);
    CHECK(out.rows[0].window_start_ms == start);
    CHECK(out.rows[0].first_event_ms == start);
    CHECK(out.rows[0].last_event_ms == start + config::kMaxWindowSize - 1);
  }
  {
    // Exported, restored into another shard and merged with a later record there.
    Collector a_out;
    Collector b_out;
    Shard a(0, Tumbling4h(config::CounterMode::kDelta), &a_out);
    Shard b(1, Tumbling4h(config::CounterMode::kDelta), &b_out);
    Feed f;
    f.Add("S", "D", 4 * kH + 300, 1, 1).Add("S", "D", 4 * kH + 100, 1, 1).Progress(4 * kH);
    f.SendTo(a);
    ShardControl out;
    out.kind = ShardControl::Kind::kExportAndDrop;
    out.slots = {0};
    a.Control(out);
    REQUIRE(out.states.size() == 1);
    REQUIRE(out.states[0].windows.size() == 1);
    CHECK(out.states[0].windows[0].first_ms == 4 * kH + 100);
    CHECK(out.states[0].windows[0].last_ms == 4 * kH + 300);
    ShardControl in;
    in.kind = ShardControl::Kind::kRestore;
    in.slots = {0};
    in.states = out.states;
    b.Control(in);
    Feed g;
    g.Add("S", "D", 8 * kH - 1, 1, 1).Progress(kNoTime, true).SendTo(b);
    const auto m = first_last(b_out.rows);
    CHECK(m.size() == 1);
    CHECK(m.at(4 * kH) == std::pair{4 * kH + 100, 8 * kH - 1});
  }
}

TEST_CASE("a partition's state exported, dropped and restored elsewhere continues exactly") {
  // Two partitions feed one shard. Partition 1's state moves to a second shard mid-window;
  // the rows both shards emit together equal one uninterrupted shard's.
  auto feed = [](Feed& f, int32_t part, int64_t from_h, int64_t to_h) {
    for (int64_t h = from_h; h < to_h; ++h) {
      f.Part(part).Add(part == 0 ? "A ST" : "B ST", part == 0 ? "A" : "B", h * kH + 60000,
                       1000 + 7 * h, 2000 + 3 * h);
    }
  };
  Collector whole_out;
  Shard whole(0, Tumbling4h(), &whole_out);
  Feed w;
  feed(w, 0, 0, 10);
  feed(w, 1, 0, 10);
  w.Progress(kNoTime, true).SendTo(whole);

  Collector a_out;
  Collector b_out;
  Shard a(0, Tumbling4h(), &a_out);
  Shard b(1, Tumbling4h(), &b_out);
  Feed f;
  feed(f, 0, 0, 5);
  feed(f, 1, 0, 5);
  f.Progress(4 * kH).SendTo(a);
  ShardControl out;
  out.kind = ShardControl::Kind::kExportAndDrop;
  out.slots = {1};
  a.Control(out);
  REQUIRE(out.states.size() == 1);
  CHECK(out.states[0].devices.size() == 1);
  CHECK(out.states[0].windows.size() == 2);  // [0,4h) and [4h,8h) are still open at 3h
  ShardControl in;
  in.kind = ShardControl::Kind::kRestore;
  in.slots = {1};
  in.states = out.states;
  b.Control(in);
  Feed g;
  feed(g, 0, 5, 10);
  g.Progress(kNoTime, true).SendTo(a);
  Feed h;
  feed(h, 1, 5, 10);
  h.Progress(kNoTime, true).SendTo(b);

  auto split = a_out.Table();
  for (const auto& [k, v] : b_out.Table()) {
    CHECK(split.count(k) == 0);
    split[k] = v;
  }
  CHECK(split == whole_out.Table());
}

TEST_CASE("a partition restored behind the watermark keeps its windows open until it catches up") {
  Collector out;
  Shard shard(0, Tumbling4h(), &out);
  Feed f;
  // Partition 0 is far ahead: windows up to 20h are closed for it.
  f.Part(0)
      .Add("A ST", "A", 0, 0, 0)
      .Add("A ST", "A", 22 * kH, 10, 10)
      .Progress(22 * kH)
      .SendTo(shard);
  CHECK(shard.watermark() == 21 * kH);
  // Partition 1 joins with a window [4h, 8h) open and closed through 4h only.
  window::PartitionState st;
  st.devices.push_back({"B ST", "B", 5 * kH, 100, 100});
  st.windows.push_back({"B ST", 4 * kH, 0, 0, 1, 5 * kH, 5 * kH});
  st.closed_through = 4 * kH;
  ShardControl c;
  c.kind = ShardControl::Kind::kRestore;
  c.slots = {1};
  c.states = {st};
  shard.Control(c);
  // Its source's progress now includes it: the watermark moves back, nothing of it is late.
  f.Part(1).Add("B ST", "B", 6 * kH, 105, 104).Progress(6 * kH).SendTo(shard);
  CHECK(shard.stats().dropped[static_cast<int>(DropReason::kLate)] == 0);
  // Partition 0's closed windows stay closed: an old record of it is late.
  f.Part(0).Add("A ST", "A2", 2 * kH, 1, 1).Progress(6 * kH).SendTo(shard);
  CHECK(shard.stats().dropped[static_cast<int>(DropReason::kLate)] == 1);
  f.Part(1).Add("B ST", "B", 9 * kH, 107, 104).Progress(9 * kH).SendTo(shard);
  auto t = out.Table();
  CHECK(t[{"B ST", 4 * kH}] == std::tuple<int64_t, int64_t, int64_t>{5, 4, 2});
}

TEST_CASE("a station seen on a second partition is counted as a keying conflict") {
  Collector out;
  ShardOptions o = Tumbling4h();
  o.detect_conflicts = true;
  Shard shard(0, o, &out);
  Feed f;
  f.Part(0)
      .Add("S", "D1", 0, 0, 0)
      .Part(1)
      .Add("S", "D2", kH, 0, 0)
      .Progress(kNoTime, true)
      .SendTo(shard);
  CHECK(shard.stats().partition_conflicts == 1);
}

TEST_CASE("a cumulative jump that does not fit in 64 bits is a reset, not a small delta") {
  Collector out;
  Shard shard(0, Tumbling4h(), &out);
  Feed f;
  f.Add("S", "D", 0, INT64_MAX, INT64_MIN)
      .Add("S", "D", kH, INT64_MIN, INT64_MAX)              // a difference of 2^64 - 1 each: resets
      .Add("S", "D", 2 * kH, INT64_MIN + 5, INT64_MAX - 7)  // back to normal: +5, |-7|
      .Progress(kNoTime, true)
      .SendTo(shard);
  CHECK(out.Table()[{"S", 0}] == std::tuple<int64_t, int64_t, int64_t>{5, 7, 3});
  CHECK(shard.stats().counter_resets == 1);
}

TEST_CASE("a delta-mode window sum that would overflow is held at the limit and counted") {
  Collector out;
  Shard shard(0, Tumbling4h(config::CounterMode::kDelta), &out);
  Feed f;
  f.Add("S", "D", 0, INT64_MAX, INT64_MIN)
      .Add("S", "D", kH, INT64_MAX, INT64_MIN)
      .Add("S", "D", 2 * kH, 10, -10)
      .Progress(kNoTime, true)
      .SendTo(shard);
  CHECK(out.Table()[{"S", 0}] == std::tuple<int64_t, int64_t, int64_t>{INT64_MAX, INT64_MIN, 3});
  CHECK(shard.stats().saturated_sums == 4);  // two adds each for entries and exits
}

TEST_CASE("a source that resumes does not carry the watermark past another still idle") {
  Collector out;
  ShardOptions o = Tumbling4h();
  o.num_sources = 2;
  o.window.idle_timeout = 3600 * 1000;  // the hold lasts for the whole test
  Shard shard(0, o, &out);
  Feed a;  // source 0
  Feed b;  // source 1
  b.batch.source = 1;
  // Both read up to 10h, then fall silent: every source idle closes every window up to 12h.
  a.Add("A", "a", 0, 0, 0).Add("A", "a", 10 * kH, 10, 0).Progress(10 * kH).SendTo(shard);
  b.Part(1).Add("B", "b", 0, 0, 0).Add("B", "b", 10 * kH, 10, 0).Progress(10 * kH).SendTo(shard);
  a.Progress(10 * kH, false, true).SendTo(shard);
  b.batch.progress = SourceProgress{10 * kH, true, false, 10 * kH};
  b.SendTo(shard);
  CHECK(out.last_watermark == 12 * kH);
  // Source 0 resumes and races ahead to 40h while source 1 still reports idle: source 1 holds
  // the watermark at its lowest high mark (10h) minus the lateness (the closed windows stay
  // closed), and nothing more closes.
  const size_t rows = out.rows.size();
  a.Add("A", "a", 13 * kH, 20, 0).Add("A", "a", 40 * kH, 30, 0).Progress(40 * kH).SendTo(shard);
  CHECK(out.last_watermark == 9 * kH);
  CHECK(out.rows.size() == rows);
  // Its own records, a poll behind, are not late.
  b.Add("B", "b", 14 * kH, 20, 0).Add("B", "b", 17 * kH, 30, 0).Progress(17 * kH).SendTo(shard);
  CHECK(shard.stats().dropped[static_cast<int>(DropReason::kLate)] == 0);
  CHECK(out.last_watermark == 16 * kH);
}
