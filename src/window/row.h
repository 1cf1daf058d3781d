// WindowRow: one output row, the same whichever sink writes it (SPEC §4):
//   station, window_start, window_end, entries, exits, events, then the extra columns
//   final, first_event, last_event.
#pragma once

#include <cstdint>
#include <string>

namespace turnstiled::window {

struct WindowRow {
  std::string station;
  int64_t window_start_ms = 0;  // UTC epoch milliseconds
  int64_t window_end_ms = 0;
  int64_t entries = 0;
  int64_t exits = 0;
  int64_t events = 0;          // records aggregated into the window
  bool final = true;           // false for `emit: update` rows of a still-open window
  int64_t first_event_ms = 0;  // earliest event time aggregated
  int64_t last_event_ms = 0;   // latest event time aggregated
  // The input partition whose state owns the row ("<topic>-<partition>"), "" for a file
  // source. Not a column: the file sink names files by it, so that instances of one group,
  // each owning some partitions, never write the same file.
  std::string source;
};

// The column names, in order, for CSV headers, JSON keys and SQL columns.
inline constexpr const char* kColumns[] = {"station", "window_start", "window_end",
                                           "entries", "exits",        "events",
                                           "final",   "first_event",  "last_event"};
inline constexpr int kColumnCount = 9;

}  // namespace turnstiled::window
