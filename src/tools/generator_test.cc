#include "tools/generator.h"

#include <doctest/doctest.h>

#include <map>
#include <set>
#include <string>
#include <tuple>

#include "base/civil_time.h"

using namespace turnstiled;
using namespace turnstiled::tools;

namespace {

std::unique_ptr<Generator> Make(uint64_t seed, int stations = 400) {
  GeneratorOptions o;
  o.seed = seed;
  o.stations = stations;
  auto g = Generator::Create(o);
  REQUIRE(g.ok());
  return std::move(g).value();
}

std::string Render(Generator* g, int n, config::FormatType format) {
  std::string all;
  GeneratedReading r;
  for (int i = 0; i < n; ++i) {
    g->Next(&r);
    RenderReading(r, format, &all);
    all.push_back('\n');
  }
  return all;
}

}  // namespace

TEST_CASE("the same seed gives byte-identical readings and another seed differs") {
  for (auto format :
       {config::FormatType::kMtaCsv, config::FormatType::kSeedCsv, config::FormatType::kJson}) {
    const std::string a = Render(Make(7).get(), 5000, format);
    const std::string b = Render(Make(7).get(), 5000, format);
    const std::string c = Render(Make(8).get(), 5000, format);
    CHECK(a == b);
    CHECK(a != c);
  }
}

TEST_CASE("the default network has at least 400 stations and 4000 devices, all distinct") {
  auto g = Make(1);
  CHECK(g->stations().size() == 400);
  CHECK(g->devices().size() >= 4000);
  std::set<std::string> names, units, keys;
  for (const auto& s : g->stations()) {
    names.insert(s.name);
    units.insert(s.unit);
    CHECK(s.name.find(',') == std::string::npos);
    CHECK(s.name.find('\'') == std::string::npos);
  }
  for (const auto& d : g->devices()) keys.insert(d.key);
  CHECK(names.size() == 400);
  CHECK(units.size() == 400);
  CHECK(keys.size() == g->devices().size());
  // Even a tiny network averages ten devices per station.
  CHECK(Make(3, 7)->devices().size() >= 70);
}

TEST_CASE("readings come in event-time order and every device reports every 4 hours or so") {
  auto g = Make(2);
  GeneratedReading r;
  int64_t previous = INT64_MIN;
  std::map<const GeneratedDevice*, int64_t> last;
  int off_hour = 0;
  for (int i = 0; i < 100000; ++i) {
    g->Next(&r);
    REQUIRE(r.local_seconds >= previous);
    previous = r.local_seconds;
    auto it = last.find(r.device);
    if (it != last.end()) {
      const int64_t gap = r.local_seconds - it->second;
      CHECK((gap == 0 || gap == 4 * 3600 || gap == 8 * 3600));
      CHECK((gap != 0 || r.kind == ReadingKind::kRecoveredDup));
    }
    last[r.device] = r.local_seconds;
    if (r.local_seconds % 3600 != 0) ++off_hour;
    // 2024-01-06 is winter in New York: UTC is local + 5 h.
    CHECK(r.utc_seconds == r.local_seconds + 5 * 3600);
  }
  CHECK(last.size() == g->devices().size());
  CHECK(off_hour > 0);
  // The first readings start at the first audit slot at or after 2024-01-06 00:00.
  CHECK(previous >= base::DaysFromCivil(2024, 1, 6) * 86400);
}

TEST_CASE("the feed has the real data's quirks: duplicates, resets, backwards registers") {
  auto g = Make(1);
  GeneratedReading r;
  std::map<const GeneratedDevice*, std::tuple<int64_t, int64_t, int64_t>> last;  // t, e, x
  int dups = 0, resets = 0, backwards_steps = 0, big_jumps = 0, falls = 0;
  std::set<int64_t> phases;
  int64_t rush_entries = 0, rush_readings = 0, night_entries = 0, night_readings = 0;
  for (int i = 0; i < 200000; ++i) {
    g->Next(&r);
    phases.insert(r.station->phase_seconds);
    CHECK(r.delta_entries >= 0);
    CHECK(r.delta_exits >= 0);
    auto it = last.find(r.device);
    if (r.kind == ReadingKind::kRecoveredDup) {
      ++dups;
      CHECK(r.desc == "RECOVR AUD");
      REQUIRE(it != last.end());
      CHECK(std::get<0>(it->second) == r.local_seconds);
      CHECK(r.delta_entries == 0);
      continue;  // the daemon drops it; the baseline stays
    }
    if (it == last.end()) {
      CHECK(r.kind == ReadingKind::kFirst);
      CHECK(r.delta_entries == 0);
    } else {
      const int64_t d = r.entries - std::get<1>(it->second);
      // The delta is exactly what the daemon's cumulative rules credit (max_delta 10000).
      if (d > 10000 || d < -10000) {
        ++resets;
        CHECK(r.kind == ReadingKind::kCounterReset);
        CHECK(r.delta_entries == 0);
        if (d > 0) ++big_jumps;
        if (r.entries < 1000) ++falls;
      } else {
        CHECK(r.delta_entries == (d < 0 ? -d : d));
        if (d < 0) ++backwards_steps;
      }
      CHECK(r.delta_exits == r.exits - std::get<2>(it->second));
      const int64_t sod = r.local_seconds % 86400;
      if (sod == 8 * 3600 && r.kind == ReadingKind::kRegular) {
        rush_entries += r.delta_entries;
        ++rush_readings;
      } else if (sod == 3 * 3600 && r.kind == ReadingKind::kRegular) {
        night_entries += r.delta_entries;
        ++night_readings;
      }
    }
    last[r.device] = {r.local_seconds, r.entries, r.exits};
  }
  int backwards_devices = 0;
  for (const auto& d : g->devices()) backwards_devices += d.backwards ? 1 : 0;
  CHECK(dups > 100);
  CHECK(resets > 5);
  CHECK(big_jumps > 0);
  CHECK(falls > 0);
  CHECK(backwards_devices > 10);
  CHECK(backwards_steps > 100);
  CHECK(phases.count(0) == 1);
  CHECK(phases.count(3 * 3600) == 1);
  CHECK(phases.count(1 * 3600) == 1);
  CHECK(phases.size() > 5);  // some off the hour
  REQUIRE(rush_readings > 0);
  REQUIRE(night_readings > 0);
  // Mean entries per reading: the 04-08 interval is far busier than 23-03.
  CHECK(rush_entries * night_readings > 2 * night_entries * rush_readings);
}

TEST_CASE("each format renders a reading exactly as documented") {
  GeneratedStation s;
  s.name = "59 ST";
  s.linename = "NQR456W";
  s.division = "BMT";
  s.unit = "R051";
  GeneratedDevice d;
  d.ca = "A002";
  d.scp = "02-00-00";
  d.key = "A002,R051,02-00-00";
  GeneratedReading r;
  r.station = &s;
  r.device = &d;
  r.local_seconds = base::DaysFromCivil(2024, 1, 6) * 86400 + 3 * 3600;
  r.utc_seconds = r.local_seconds + 5 * 3600;
  r.desc = "REGULAR";
  r.entries = 102019;
  r.exits = 73801;
  r.delta_entries = 12;
  r.delta_exits = 7;
  std::string out;
  RenderReading(r, config::FormatType::kMtaCsv, &out);
  CHECK(out == "A002,R051,02-00-00,59 ST,NQR456W,BMT,01/06/2024,03:00:00,REGULAR,102019,73801");
  out.clear();
  RenderReading(r, config::FormatType::kSeedCsv, &out);
  CHECK(out ==
        "timestamp,station,turnstile_id,device_id,entry,exit,entry_datetime\n"
        "'2024-01-06 03:00:00','59 ST','A002-R051','02-00-00',12,7,'2024-01-06 03:00:00'");
  out.clear();
  RenderReading(r, config::FormatType::kJson, &out);
  CHECK(out ==
        "{\"station\":\"59 ST\",\"device\":\"A002,R051,02-00-00\","
        "\"time\":\"2024-01-06T08:00:00Z\",\"entries\":12,\"exits\":7}");
}
