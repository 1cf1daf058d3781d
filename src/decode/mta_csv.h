// MtaCsvDecoder: the MTA weekly turnstile layout (format `mta-csv`, SPEC §3).
//
//   C/A,UNIT,SCP,STATION,LINENAME,DIVISION,DATE,TIME,DESC,ENTRIES,EXITS[,ID,TIMESTAMP]
//
// The record's device is the bytes `C/A,UNIT,SCP` as they stand in the row (a view, no copy),
// its station is STATION, and its time is DATE+TIME read in the configured zone. See
// docs/FORMATS.md for every accepted variant.
//
// Thread-compatible: one decoder per ingest thread. Views in a decoded Record point into the
// message bytes (or, for quoted rows, into this decoder) until the next Decode().
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "base/time_zone.h"
#include "decode/decoder.h"

namespace turnstiled::decode {

struct LineScan;    // mta_csv.cc
struct BlockMasks;  // mta_csv.cc

class MtaCsvDecoder final : public Decoder {
 public:
  MtaCsvDecoder(base::LocalTimeConverter zone, int64_t max_message_bytes);

  DecodeStatus Decode(std::string_view bytes, Record* out) override;
  // One pass over the chunk: a SIMD scan (AVX2 when the CPU has it, else SSE2) finds the
  // newlines, commas, quotes and non-ASCII bytes of 64 bytes at a time, and each line is
  // decoded from those positions.
  int64_t DecodeLines(std::string_view chunk, LineHandler* handler) override;

  // True if `line` is a header row: its first field, trimmed and unquoted, is `C/A` or `CA`.
  static bool IsHeader(std::string_view line);

  // For tests: DecodeLines() scans with the baseline (SSE2) loop even where the CPU has AVX2.
  void UseBaselineScanForTesting() { avx2_ = false; }

 private:
  // The rest of a line once its commas are known: the common shape goes straight to the
  // fields, the rare ones (quotes, non-ASCII, leading blanks) to Decode().
  DecodeStatus DecodeScannedLine(std::string_view line, const LineScan& scan, Record* out);
  // Splits the chunk into lines with kMasks (one 64-byte block at a time) and decodes each.
  // Instantiated once per instruction set, so that kMasks is inlined into the loop.
  template <BlockMasks (*kMasks)(const char*)>
  int64_t ScanChunk(std::string_view chunk, LineHandler* handler);
  int64_t ScanChunkAvx2(std::string_view chunk, LineHandler* handler);
  int64_t ScanChunkBaseline(std::string_view chunk, LineHandler* handler);
  // The fast path: an ASCII line without quotes or leading blanks, already split by ScanLine.
  DecodeStatus DecodeScanned(std::string_view line, const LineScan& scan, Record* out);
  // The general path: one trimmed, non-empty, non-header, valid UTF-8 line, quotes allowed.
  DecodeStatus DecodeLine(std::string_view line, Record* out);
  // What both paths share: checks and converts DATE, TIME, ENTRIES and EXITS into *out
  // (entries, exits, event_ms). `line` is where the row starts (the counters are read up to 8
  // bytes before their end).
  DecodeStatus DecodeValues(const char* line, std::string_view date, std::string_view time,
                            std::string_view entries, std::string_view exits, Record* out);
  // Checks and converts the n (11 or 13) fields of a row. Reads only f[0..3] and the DATE,
  // TIME, ENTRIES and EXITS fields (6, 7, 9, 10). `quoted` says the key fields are not
  // contiguous bytes of `line`.
  DecodeStatus DecodeFields(std::string_view line, const std::string_view* f, size_t n, bool quoted,
                            Record* out);

  // A DATE field that parsed (its bytes, as 8 + 2), its local civil seconds at 00:00, and the
  // day's UTC offset when one holds all day.
  struct DateSlot {
    uint64_t lo = 0;
    uint16_t hi = 0;
    size_t len = 0;  // 0: empty
    int64_t day_seconds = 0;
    int64_t utc_offset = 0;  // local - UTC, seconds; when `uniform`
    bool uniform = false;    // false: a day with a DST transition (or none parsed)
  };
  static constexpr size_t kDateSlots = 16;
  // A DATE field's day. A file's rows run through the same few dates, a device at a time: the
  // date of the row before is checked first, then a small cache keyed by the field's bytes.
  // Null if the field is not a date.
  const DateSlot* DateOf(std::string_view date) {
    if (date.size() != 8 && date.size() != 10) return nullptr;  // no date has another length
    uint64_t lo;
    std::memcpy(&lo, date.data(), 8);
    uint16_t hi = 0;
    if (date.size() == 10) std::memcpy(&hi, date.data() + 8, 2);
    if (lo == last_date_.lo && hi == last_date_.hi && date.size() == last_date_.len) {
      return &last_date_;
    }
    // The day of month's two bytes (MM/DD/...), so that up to 16 consecutive days never share
    // a slot.
    const auto d0 = static_cast<unsigned char>(date[3]);
    const auto d1 = static_cast<unsigned char>(date[4]);
    DateSlot& slot = dates_[(d0 * 10u + d1) % kDateSlots];
    if ((slot.lo != lo || slot.hi != hi || slot.len != date.size()) &&
        !FillDate(date, lo, hi, &slot)) {
      return nullptr;
    }
    last_date_ = slot;
    return &last_date_;
  }
  // Parses a DATE field into *slot. False (and the slot left empty) if it is not a date.
  bool FillDate(std::string_view date, uint64_t lo, uint16_t hi, DateSlot* slot);
  // UTC milliseconds of a time of day on a date.
  int64_t EventMs(const DateSlot& date, int64_t time_of_day) {
    const int64_t local = date.day_seconds + time_of_day;
    return (date.uniform ? local - date.utc_offset : zone_.ToUtcSeconds(local)) * 1000;
  }

  // Constant after construction.
  const size_t max_message_bytes_;
  bool avx2_;  // DecodeLines() uses ScanChunkAvx2 (the CPU has AVX2, unless a test says not)
  // Owned by the calling thread.
  base::LocalTimeConverter zone_;  // caches per-day offsets, hence not const
  std::string device_;             // device of a row whose key fields are quoted; reused
  DateSlot last_date_;             // the date of the last row that had one
  DateSlot dates_[kDateSlots];
};

}  // namespace turnstiled::decode
