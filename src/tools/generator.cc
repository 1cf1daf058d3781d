#include "tools/generator.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>

#include "base/civil_time.h"

namespace turnstiled::tools {
namespace {

constexpr int64_t kAuditSeconds = 4 * 3600;
constexpr int64_t kMaxTraffic = 5000;                // per reading, well under max_delta (10000)
constexpr int64_t kRegisterCeiling = 2'100'000'000;  // real registers stay below 2^31-1

// Probabilities, in parts per million per reading or per device.
constexpr uint64_t kDupPpm = 7000;         // RECOVR AUD repeat after a reading
constexpr uint64_t kMissedPpm = 3000;      // a skipped audit leaves an 8 h gap
constexpr uint64_t kResetPpm = 250;        // counter reset (jump or fall)
constexpr uint64_t kBackwardsPpm = 10000;  // device whose ENTRIES run backwards
constexpr uint64_t kDeadPpm = 15000;       // device that counts nothing

// Share of an average hour's traffic by local hour of day, in permille: quiet nights, a
// morning peak at 07-09 and an evening peak at 16-19.
constexpr std::array<int64_t, 24> kHourWeight = {300,  150,  80,   50,   100, 350, 900,  1800,
                                                 2000, 1300, 800,  800,  900, 900, 1000, 1200,
                                                 1500, 2000, 1800, 1100, 800, 700, 550,  400};

constexpr const char* kWords[] = {
    "PARK",    "CANAL",     "BROAD",    "FULTON",   "WALL",      "CHAMBERS", "SPRING",
    "PRINCE",  "HOUSTON",   "DELANCEY", "ESSEX",    "GRAND",     "BOWERY",   "LAFAYETTE",
    "ASTOR",   "BLEECKER",  "FRANKLIN", "RECTOR",   "CORTLANDT", "KINGSTON", "NOSTRAND",
    "UTICA",   "FLATBUSH",  "CHURCH",   "BEVERLY",  "CORTELYOU", "NEWKIRK",  "KINGS",
    "JAMAICA", "WOODHAVEN", "MYRTLE",   "DEKALB",   "JAY",       "HOYT",     "NEVINS",
    "BERGEN",  "CARROLL",   "SMITH",    "UNION",    "PROSPECT",  "ATLANTIC", "MARCY",
    "HEWES",   "LORIMER",   "GRAHAM",   "MONTROSE", "HALSEY",    "WILSON"};
constexpr const char* kSuffixes[] = {"ST", "AV", "PL", "SQ", "BLVD", "PKWY", "RD", "HTS"};
constexpr int kWordCount = sizeof(kWords) / sizeof(kWords[0]);
constexpr int kSuffixCount = sizeof(kSuffixes) / sizeof(kSuffixes[0]);
constexpr int kNumberedStreets = 150;
constexpr std::string_view kLines = "1234567ACEBDFMGJZLNQRSW";
constexpr std::string_view kRegular = "REGULAR";
constexpr std::string_view kRecovered = "RECOVR AUD";

std::string StationName(int i) {
  if (i < kNumberedStreets) {
    std::string name = std::to_string(i + 1);
    name.append(" ST");
    return name;
  }
  const int j = i - kNumberedStreets;
  std::string name = kWords[j % kWordCount];
  name.push_back(' ');
  name.append(kSuffixes[(j / kWordCount) % kSuffixCount]);
  if (j >= kWordCount * kSuffixCount) {
    name.push_back('-');
    name.append(std::to_string(j / (kWordCount * kSuffixCount)));
  }
  return name;
}

// Mixes a seed and a stream number into an independent splitmix64 state.
uint64_t Mix(uint64_t seed, uint64_t stream) {
  SplitMix64 m(seed ^ (stream * 0xd1b54a32d192ed03ULL));
  m.Next();
  return m.Next();
}

void AppendInt(int64_t v, std::string* out) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, r.ptr);
}

void Append2(unsigned v, std::string* out) {
  out->push_back(static_cast<char>('0' + v / 10 % 10));
  out->push_back(static_cast<char>('0' + v % 10));
}

void AppendTime(int64_t local_seconds, std::string* out) {
  const int64_t sod = base::FloorMod(local_seconds, 86400);
  Append2(static_cast<unsigned>(sod / 3600), out);
  out->push_back(':');
  Append2(static_cast<unsigned>(sod / 60 % 60), out);
  out->push_back(':');
  Append2(static_cast<unsigned>(sod % 60), out);
}

void AppendJsonString(std::string_view s, std::string* out) {
  out->push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out->append(buf);
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

}  // namespace

void AppendLocalDateTime(int64_t local_seconds, std::string* out) {
  const base::CivilDate d = base::CivilFromDays(base::FloorDiv(local_seconds, 86400));
  AppendInt(d.year, out);
  out->push_back('-');
  Append2(d.month, out);
  out->push_back('-');
  Append2(d.day, out);
  out->push_back(' ');
  AppendTime(local_seconds, out);
}

base::Result<std::unique_ptr<Generator>> Generator::Create(const GeneratorOptions& options) {
  if (options.stations < 1) return base::Status::InvalidArgument("stations must be at least 1");
  auto converter = base::LocalTimeConverter::Create(options.time_zone);
  if (!converter.ok()) return converter.status();
  std::unique_ptr<Generator> g(new Generator(options, std::move(converter).value()));
  g->BuildNetwork();
  return g;
}

Generator::Generator(const GeneratorOptions& options, base::LocalTimeConverter converter)
    : options_(options), converter_(std::move(converter)) {}

void Generator::BuildNetwork() {
  SplitMix64 rng(Mix(options_.seed, 0));
  stations_.resize(static_cast<size_t>(options_.stations));
  std::vector<int> device_count(stations_.size());
  int64_t total = 0;
  for (size_t i = 0; i < stations_.size(); ++i) {
    GeneratedStation& s = stations_[i];
    s.name = StationName(static_cast<int>(i));
    const size_t nlines = 1 + rng.Below(4);
    for (size_t k = 0; k < nlines; ++k) s.linename.push_back(kLines[rng.Below(kLines.size())]);
    const char first = s.linename[0];
    s.division = (first >= '1' && first <= '7') ? "IRT" : (rng.Below(2) != 0 ? "BMT" : "IND");
    char unit[32];
    std::snprintf(unit, sizeof unit, "R%03zu", i + 1);
    s.unit = unit;
    const uint64_t p = rng.Below(100);
    if (p < 40) {
      s.phase_seconds = 0;  // 00/04/08..
    } else if (p < 65) {
      s.phase_seconds = 3 * 3600;  // 03/07/11..
    } else if (p < 80) {
      s.phase_seconds = 1 * 3600;  // 01/05/09..
    } else if (p < 90) {
      s.phase_seconds = 2 * 3600;  // 02/06/10..
    } else {
      // Off the hour, e.g. 01:22, 05:22, ...
      s.phase_seconds =
          static_cast<int64_t>(rng.Below(4)) * 3600 + static_cast<int64_t>(1 + rng.Below(59)) * 60;
    }
    const int64_t u = static_cast<int64_t>(rng.Below(1000));
    s.busy_per_hour = 5 + u * u * u * 145 / 1'000'000'000;
    device_count[i] = 6 + static_cast<int>(rng.Below(11));
    total += device_count[i];
  }
  // Top up so the network always averages at least 10 devices per station.
  for (size_t i = 0; total < 10LL * options_.stations; i = (i + 1) % stations_.size()) {
    ++device_count[i];
    ++total;
  }

  int ca_counter = 0;
  constexpr std::string_view kCaLetters = "ANRHJ";
  for (size_t i = 0; i < stations_.size(); ++i) {
    const int n = device_count[i];
    const int per_ca = n <= 8 ? n : (n + 1) / 2;
    for (int d = 0; d < n; ++d) {
      const int ca_index = d / per_ca;
      const int scp_index = d % per_ca;
      GeneratedDevice dev;
      dev.station = static_cast<int>(i);
      const int ca_number = ca_counter + ca_index;
      char buf[32];
      std::snprintf(buf, sizeof buf, "%c%03d", kCaLetters[static_cast<size_t>(ca_number) % 5],
                    ca_number / 5 + 1);
      dev.ca = buf;
      std::snprintf(buf, sizeof buf, "%02d-0%d-%02d", ca_index, scp_index / 10 * 3, scp_index % 10);
      dev.scp = buf;
      dev.key = dev.ca;
      dev.key.push_back(',');
      dev.key.append(stations_[i].unit);
      dev.key.push_back(',');
      dev.key.append(dev.scp);
      devices_.push_back(std::move(dev));
    }
    ca_counter += (n + per_ca - 1) / per_ca;
  }

  state_.resize(devices_.size());
  for (size_t k = 0; k < devices_.size(); ++k) {
    GeneratedDevice& dev = devices_[k];
    DeviceState& st = state_[k];
    st.rng = SplitMix64(Mix(options_.seed, k + 1));
    dev.dead = st.rng.Ppm() < kDeadPpm;
    dev.backwards = !dev.dead && st.rng.Ppm() < kBackwardsPpm;
    st.rate_permille = 500 + static_cast<int64_t>(st.rng.Below(1001));
    // Registers start anywhere in their range; a backwards one starts high enough to run
    // backwards for years.
    st.entries = dev.backwards ? 1'000'000'000 + static_cast<int64_t>(st.rng.Below(1'000'000'000))
                               : static_cast<int64_t>(st.rng.Below(1'000'000'000));
    st.exits = static_cast<int64_t>(st.rng.Below(1'000'000'000));
    // The first reading is the first audit slot at or after the start.
    const int64_t phase = stations_[static_cast<size_t>(dev.station)].phase_seconds;
    const int64_t slot =
        base::FloorDiv(options_.start_local_seconds - phase + kAuditSeconds - 1, kAuditSeconds);
    st.next_local = slot * kAuditSeconds + phase;
    due_.push({st.next_local, static_cast<uint32_t>(k)});
  }
}

int64_t Generator::Traffic(int64_t from_local, int64_t to_local, int64_t per_hour,
                           SplitMix64* rng) const {
  // Integrates the hourly weights over (from, to], one hour segment at a time.
  int64_t weighted_seconds = 0;  // permille * seconds
  for (int64_t t = from_local; t < to_local;) {
    const int64_t hour_end = (base::FloorDiv(t, 3600) + 1) * 3600;
    const int64_t end = std::min(hour_end, to_local);
    const size_t hour = static_cast<size_t>(base::FloorMod(t, 86400) / 3600);
    weighted_seconds += kHourWeight[hour] * (end - t);
    t = end;
  }
  const int64_t expected = per_hour * weighted_seconds / (1000 * 3600);
  const int64_t noisy = expected * (700 + static_cast<int64_t>(rng->Below(601))) / 1000;
  return std::min(noisy, kMaxTraffic);
}

bool Generator::Next(GeneratedReading* out) {
  const Due due = due_.top();
  due_.pop();
  const GeneratedDevice& dev = devices_[due.device];
  const GeneratedStation& station = stations_[static_cast<size_t>(dev.station)];
  DeviceState& st = state_[due.device];
  out->station = &station;
  out->device = &dev;
  out->local_seconds = due.local;
  out->utc_seconds = converter_.ToUtcSeconds(due.local);
  out->delta_entries = 0;
  out->delta_exits = 0;

  if (st.dup_pending) {
    // A recovered audit repeats the previous timestamp with other register values; the
    // daemon drops it as a duplicate, so the device's registers do not move.
    st.dup_pending = false;
    out->desc = kRecovered;
    out->kind = ReadingKind::kRecoveredDup;
    out->entries = st.entries + static_cast<int64_t>(st.rng.Below(60));
    out->exits = st.exits + static_cast<int64_t>(st.rng.Below(60));
    due_.push({st.next_local, due.device});
    return true;
  }

  out->desc = kRegular;
  if (!st.started) {
    st.started = true;
    out->kind = ReadingKind::kFirst;
  } else {
    const int64_t per_hour = dev.dead ? 0 : station.busy_per_hour * st.rate_permille / 1000;
    const int64_t entries = Traffic(st.last_local, due.local, per_hour, &st.rng);
    const int64_t exits = Traffic(st.last_local, due.local, per_hour * 7 / 10, &st.rng);
    out->kind = ReadingKind::kRegular;
    out->delta_entries = entries;
    out->delta_exits = exits;
    st.exits += exits;
    if (dev.backwards) {
      if (st.entries >= entries) {
        st.entries -= entries;
      } else {
        // Ran out of register: it wraps to the top, which reads as a reset.
        st.entries = kRegisterCeiling - static_cast<int64_t>(st.rng.Below(1000));
        out->kind = ReadingKind::kCounterReset;
        out->delta_entries = 0;
      }
    } else {
      st.entries += entries;
    }
    if (st.rng.Ppm() < kResetPpm) {
      out->kind = ReadingKind::kCounterReset;
      out->delta_entries = 0;
      const int64_t jump = 20'000 + static_cast<int64_t>(st.rng.Below(5'000'000));
      if (st.entries > 100'000 && (st.rng.Below(2) == 0 || st.entries + jump > kRegisterCeiling)) {
        st.entries = static_cast<int64_t>(st.rng.Below(1000));  // fall to a small value
      } else {
        st.entries += jump;
      }
    }
  }
  out->entries = st.entries;
  out->exits = st.exits;

  st.last_local = due.local;
  st.next_local = due.local + (st.rng.Ppm() < kMissedPpm ? 2 : 1) * kAuditSeconds;
  st.dup_pending = st.rng.Ppm() < kDupPpm;
  due_.push({st.dup_pending ? due.local : st.next_local, due.device});
  return true;
}

void RenderReading(const GeneratedReading& r, config::FormatType format, std::string* out) {
  const GeneratedStation& s = *r.station;
  const GeneratedDevice& d = *r.device;
  switch (format) {
    case config::FormatType::kMtaCsv: {
      out->append(d.key);
      out->push_back(',');
      out->append(s.name);
      out->push_back(',');
      out->append(s.linename);
      out->push_back(',');
      out->append(s.division);
      out->push_back(',');
      const base::CivilDate date = base::CivilFromDays(base::FloorDiv(r.local_seconds, 86400));
      Append2(date.month, out);
      out->push_back('/');
      Append2(date.day, out);
      out->push_back('/');
      AppendInt(date.year, out);
      out->push_back(',');
      AppendTime(r.local_seconds, out);
      out->push_back(',');
      out->append(r.desc);
      out->push_back(',');
      AppendInt(r.entries, out);
      out->push_back(',');
      AppendInt(r.exits, out);
      return;
    }
    case config::FormatType::kSeedCsv: {
      out->append(kSeedCsvHeader);
      out->push_back('\n');
      out->push_back('\'');
      AppendLocalDateTime(r.local_seconds, out);
      out->append("','");
      out->append(s.name);
      out->append("','");
      out->append(d.ca);
      out->push_back('-');
      out->append(s.unit);
      out->append("','");
      out->append(d.scp);
      out->append("',");
      AppendInt(r.delta_entries, out);
      out->push_back(',');
      AppendInt(r.delta_exits, out);
      out->append(",'");
      AppendLocalDateTime(r.local_seconds, out);
      out->push_back('\'');
      return;
    }
    case config::FormatType::kJson: {
      out->append("{\"station\":");
      AppendJsonString(s.name, out);
      out->append(",\"device\":");
      AppendJsonString(d.key, out);
      out->append(",\"time\":\"");
      base::AppendIsoUtc(r.utc_seconds * 1000, out);
      out->append("\",\"entries\":");
      AppendInt(r.delta_entries, out);
      out->append(",\"exits\":");
      AppendInt(r.delta_exits, out);
      out->push_back('}');
      return;
    }
  }
}

}  // namespace turnstiled::tools
