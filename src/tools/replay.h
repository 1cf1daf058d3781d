// ReplaySet: the rows of real MTA weekly files, in event-time order, for `produce --replay`.
//
// Load() reads every file (plain or .zst) into memory and sorts all their rows together with a
// STABLE sort on the parsed local DATE+TIME. Rows with equal times keep their file order (and
// files keep their command-line order), so each device's readings stay in the order the MTA
// wrote them, including recovered audits that repeat a timestamp.
//
// Header lines (first field, trimmed, is `C/A` or `CA`) and empty lines are skipped. A row
// whose DATE or TIME does not parse, or that has fewer than 8 fields, makes Load() fail with
// the file and line: replay is for real files, and a silent skip would hide a bad input.
//
// Thread-compatible. Rows point into text owned by the ReplaySet.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace turnstiled::tools {

struct ReplayRow {
  std::string_view line;      // the row exactly as it stands, without "\n" (and a "\r" before it)
  std::string_view station;   // the STATION field
  int64_t local_seconds = 0;  // DATE+TIME as local wall-clock seconds since 1970-01-01
};

class ReplaySet {
 public:
  static base::Result<ReplaySet> Load(const std::vector<std::string>& paths);

  const std::vector<ReplayRow>& rows() const { return rows_; }
  int64_t headers_skipped() const { return headers_skipped_; }

 private:
  // One per file; rows_ point into these. Held by pointer so moving the set moves no text.
  std::vector<std::unique_ptr<std::string>> texts_;
  std::vector<ReplayRow> rows_;
  int64_t headers_skipped_ = 0;
};

// Parses "MM/DD/YYYY" or "MM-DD-YY" and "HH:MM:SS" into local seconds. False if either does
// not parse or names a day that does not exist.
bool ParseMtaDateTime(std::string_view date, std::string_view time, int64_t* local_seconds);

}  // namespace turnstiled::tools
