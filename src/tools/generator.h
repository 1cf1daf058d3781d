// Generator: a deterministic simulation of the subway's turnstile feed, without Kafka.
//
// It builds a network of stations (each with control areas, a unit and turnstiles) and emits
// register readings in event-time order across all devices, each device's readings in time
// order. The data carries the quirks of the real MTA feed (see data/mta/README.md):
//   - cumulative ENTRIES/EXITS registers with a daily rhythm (rush hours busy, nights quiet);
//   - a reading every 4 hours, on a phase that varies by station (00/04/08.., 03/07/11..,
//     01/05/09.., 02/06/10.., and some off the hour such as 01:22/05:22..);
//   - occasional `RECOVR AUD` repeats at the same timestamp as the device's previous reading;
//   - a few counter resets: a jump of more than 10000, or a fall to a small value;
//   - some registers that run backwards for their whole life, and some dead turnstiles.
//
// The same options give the same readings, byte for byte, on every platform: randomness comes
// from splitmix64 and integer arithmetic only, never from std:: distributions.
//
// Thread-compatible: one Generator per thread. Readings point into the Generator and stay
// valid until its next Next() call.
#pragma once

#include <cstdint>
#include <memory>
#include <queue>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "base/time_zone.h"
#include "config/config.h"

namespace turnstiled::tools {

// splitmix64: small, fast, and the same on every platform.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n). REQUIRES: n > 0. The modulo bias is irrelevant at these sizes.
  uint64_t Below(uint64_t n) { return Next() % n; }
  // Uniform in [0, 1000000): probabilities in parts per million.
  uint64_t Ppm() { return Next() % 1000000; }

 private:
  uint64_t state_;
};

struct GeneratorOptions {
  uint64_t seed = 1;
  int stations = 400;
  // Devices per station vary between 6 and 16; the network always has at least 10 per station
  // on average, so the default network holds at least 4000 devices.
  // First event time, as local wall-clock seconds since 1970-01-01T00:00:00 (local).
  int64_t start_local_seconds = 19728LL * 86400;  // 2024-01-06 00:00:00
  std::string time_zone = "America/New_York";
};

struct GeneratedStation {
  std::string name;           // STATION
  std::string linename;       // LINENAME
  std::string division;       // DIVISION
  std::string unit;           // UNIT, unique per station
  int64_t phase_seconds = 0;  // offset of the 4-hour audit schedule from local midnight
  int64_t busy_per_hour = 0;  // entries per device-hour at weight 1.0, before device factors
};

struct GeneratedDevice {
  int station = 0;         // index into Generator::stations()
  std::string ca;          // C/A
  std::string scp;         // SCP
  std::string key;         // "C/A,UNIT,SCP"
  bool backwards = false;  // the ENTRIES register runs backwards for its whole life
  bool dead = false;       // the turnstile counts nothing
};

// What kind of reading this is; tests and benchmarks count them.
enum class ReadingKind : uint8_t {
  kRegular = 0,
  kFirst,         // the device's first reading: the baseline, delta 0
  kRecoveredDup,  // RECOVR AUD at the same timestamp as the previous reading, delta 0
  kCounterReset,  // a register jumped or fell by more than 10000, delta 0 for that register
};

struct GeneratedReading {
  const GeneratedStation* station = nullptr;
  const GeneratedDevice* device = nullptr;
  int64_t local_seconds = 0;  // wall-clock local time (as if it were UTC)
  int64_t utc_seconds = 0;
  std::string_view desc;  // "REGULAR" or "RECOVR AUD"
  ReadingKind kind = ReadingKind::kRegular;
  int64_t entries = 0;  // register readings (cumulative)
  int64_t exits = 0;
  // Counts for the interval since the device's previous accepted reading, never negative:
  // exactly what the daemon's cumulative rules (SPEC §3, max_delta 10000) would credit, so a
  // delta-mode run over seed-csv/json sums to the same totals as a cumulative run over mta-csv.
  int64_t delta_entries = 0;
  int64_t delta_exits = 0;
};

class Generator {
 public:
  // Fails only on a bad time zone name.
  static base::Result<std::unique_ptr<Generator>> Create(const GeneratorOptions& options);

  // Sets *out to the next reading. Always returns true: the simulation has no end.
  bool Next(GeneratedReading* out);

  const std::vector<GeneratedStation>& stations() const { return stations_; }
  const std::vector<GeneratedDevice>& devices() const { return devices_; }

 private:
  struct DeviceState {
    int64_t next_local = 0;  // time of the next scheduled reading
    int64_t last_local = 0;  // time of the previous reading
    int64_t entries = 0;
    int64_t exits = 0;
    int64_t rate_permille = 1000;  // this device's share of its station's traffic
    bool started = false;
    bool dup_pending = false;  // a RECOVR AUD repeat is due at last_local
    SplitMix64 rng{0};
  };
  struct Due {
    int64_t local;
    uint32_t device;
    bool operator>(const Due& o) const {
      return local != o.local ? local > o.local : device > o.device;
    }
  };

  Generator(const GeneratorOptions& options, base::LocalTimeConverter converter);
  void BuildNetwork();
  // Entries expected between two local times for a device, following the daily rhythm.
  int64_t Traffic(int64_t from_local, int64_t to_local, int64_t per_hour, SplitMix64* rng) const;

  const GeneratorOptions options_;
  base::LocalTimeConverter converter_;
  std::vector<GeneratedStation> stations_;
  std::vector<GeneratedDevice> devices_;
  std::vector<DeviceState> state_;
  std::priority_queue<Due, std::vector<Due>, std::greater<Due>> due_;
};

// Renders a reading as one message value in a format (SPEC §3), appending to *out.
//   mta-csv:  C/A,UNIT,SCP,STATION,LINENAME,DIVISION,MM/DD/YYYY,HH:MM:SS,DESC,ENTRIES,EXITS
//             with cumulative registers, local time.
//   seed-csv: the header line, '\n', then one row; delta counts, event time local.
//   json:     {"station":..,"device":..,"time":"<RFC 3339 UTC>","entries":..,"exits":..};
//             delta counts.
void RenderReading(const GeneratedReading& r, config::FormatType format, std::string* out);

// The header line of a seed-csv message.
inline constexpr std::string_view kSeedCsvHeader =
    "timestamp,station,turnstile_id,device_id,entry,exit,entry_datetime";

// Appends "YYYY-MM-DD HH:MM:SS" (sep '-', ' ') or "MM/DD/YYYY" + "HH:MM:SS" pieces.
void AppendLocalDateTime(int64_t local_seconds, std::string* out);

}  // namespace turnstiled::tools
