// Hive-style partition values: how a station name becomes one safe directory name and back.
//
// EscapePartitionValue() maps ANY byte string to a name that is a single path component: it never
// contains '/' or NUL, is never "", "." or "..", and never starts with '.'. Readable names stay
// readable ("59 ST", "TIMES SQ-42 ST"). The rules:
//   - [A-Za-z0-9], '-', '_', ' ' and '.' are kept; a leading '.' is written %2E.
//   - Every other byte (including '%', '/', quotes, control and non-ASCII bytes) is %XX with
//     uppercase hex, one escape per byte.
//   - The empty value is written as a lone "%". An escaped non-empty value never contains a '%'
//     that is not followed by two hex digits, so this spelling cannot collide.
//   - A result longer than kMaxEscapedBytes is cut (never inside an escape) and gets "~" plus 16
//     hex digits of a 64-bit FNV-1a hash of the whole value, so directory names stay far below
//     NAME_MAX (255) and two long names with the same prefix still differ. '~' is otherwise
//     always escaped, so a cut name is recognisable; it cannot be unescaped, but every row in
//     the file carries the full station name.
//
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace turnstiled::sink {

inline constexpr size_t kMaxEscapedBytes = 200;

std::string EscapePartitionValue(std::string_view value);

// The inverse of EscapePartitionValue for every name it produces that was not cut.
// InvalidArgument for a cut name (contains '~') or anything it would never produce.
base::Result<std::string> UnescapePartitionValue(std::string_view escaped);

// The directory of a row, relative to the sink path: one `name=value` folder per entry of
// `fields` (a file sink's partition_by), outermost first:
//   date     date=YYYY-MM-DD, the UTC date of window_start_ms
//   hour     hour=HH, the UTC hour of window_start_ms
//   station  station=<EscapePartitionValue(station)>
// "" when `fields` is empty.
std::string PartitionDir(const std::vector<std::string>& fields, std::string_view station,
                         int64_t window_start_ms);

}  // namespace turnstiled::sink
