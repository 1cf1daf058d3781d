// LocalTimeConverter turns local wall-clock times (no zone) into UTC using the tz database.
//
// Decoders call it once per record, so the common case is a table lookup: the UTC offset of
// each local day that contains no transition is cached. Days with a DST transition take the
// slow path through absl's cctz. For a wall time that does not exist (spring forward) or
// exists twice (fall back), the offset in force *before* the transition is used, as
// java.time and Python's zoneinfo (fold=0) do.
//
// Thread-compatible: each decoder owns its converter.
#pragma once

#include <absl/time/time.h>

#include <array>
#include <cstdint>
#include <string>

#include "base/status.h"

namespace turnstiled::base {

class LocalTimeConverter {
 public:
  // `zone` is an IANA name ("America/New_York") or "UTC".
  static Result<LocalTimeConverter> Create(const std::string& zone);

  // For the local day that starts at `day_start` (local seconds, a multiple of 86400): true if
  // one UTC offset holds all day, and that offset (local - UTC, seconds). A caller that keeps
  // it converts the day's times with a subtraction; false for a day with a transition, whose
  // times must go through ToUtcSeconds().
  bool DayOffset(int64_t day_start, int64_t* offset) {
    const Slot& s = SlotOf(FloorDay(day_start));
    *offset = s.offset;
    return s.uniform;
  }

  // `local_seconds` counts seconds since 1970-01-01T00:00:00 *local* time (as if it were UTC).
  // Returns seconds since the Unix epoch in UTC.
  int64_t ToUtcSeconds(int64_t local_seconds) {
    const Slot& s = SlotOf(FloorDay(local_seconds));
    if (s.uniform) return local_seconds - s.offset;
    return SlowPath(local_seconds);
  }

 private:
  static constexpr int64_t FloorDay(int64_t local_seconds) {
    return local_seconds >= 0 ? local_seconds / 86400 : -((-local_seconds + 86399) / 86400);
  }
  static constexpr size_t kSlots = 64;
  struct Slot {
    int64_t day = INT64_MIN;
    int64_t offset = 0;  // local - UTC, seconds
    bool uniform = false;
  };
  explicit LocalTimeConverter(absl::TimeZone tz) : tz_(tz) {}
  // The cached offsets of a local day, filled on first use.
  const Slot& SlotOf(int64_t day) {
    Slot& s = cache_[static_cast<size_t>(day) & (kSlots - 1)];
    if (s.day != day) Fill(day, &s);
    return s;
  }
  void Fill(int64_t day, Slot* s) const;
  int64_t SlowPath(int64_t local_seconds) const;

  absl::TimeZone tz_;
  std::array<Slot, kSlots> cache_{};
};

}  // namespace turnstiled::base
