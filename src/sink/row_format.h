// Text encodings of a WindowRow shared by the file sink, the dead letter and the tests.
//
// CSV: RFC 4180. The header is window/row.h kColumns joined by ','; a field is quoted when it
// contains ',', '"', CR or LF, with quotes doubled. Times are ISO-8601 UTC, final is true/false.
// JSONL: one object per row with the same keys in the same order.
// JSON strings are always valid JSON and valid UTF-8: valid UTF-8 is copied, '"', '\' and
// control characters are escaped, and each byte that is not part of valid UTF-8 is written as
// \u00XX (its Latin-1 reading). Such a byte therefore reads back as U+00XX: station names in the
// MTA data are ASCII, and a JSON document cannot carry raw bytes any other way.
//
// Append* functions only append to `out`; they allocate nothing else. Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "window/row.h"

namespace turnstiled::sink {

bool IsValidUtf8(std::string_view s);

void AppendJsonString(std::string_view s, std::string* out);
void AppendCsvField(std::string_view s, std::string* out);

// The header line, with its trailing '\n'.
void AppendCsvHeader(std::string* out);
// One row, with its trailing '\n'.
void AppendCsvRow(const window::WindowRow& row, std::string* out);
void AppendJsonRow(const window::WindowRow& row, std::string* out);

// "20240106T040000Z" (".123" before the Z when the milliseconds are not whole): a UTC stamp
// safe in file names.
void AppendCompactUtc(int64_t epoch_ms, std::string* out);

void AppendBase64(std::string_view bytes, std::string* out);

}  // namespace turnstiled::sink
