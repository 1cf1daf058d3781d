// Durations as written in config files: an integer followed by a unit, `500ms`, `30s`, `5m`,
// `4h` or `1d`. Several parts may be joined (`1h30m`). Internally all durations are milliseconds.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace turnstiled::base {

using Millis = int64_t;

inline constexpr Millis kSecond = 1000;
inline constexpr Millis kMinute = 60 * kSecond;
inline constexpr Millis kHour = 60 * kMinute;
inline constexpr Millis kDay = 24 * kHour;

// Returns nullopt for anything that is not a well-formed, non-negative duration.
std::optional<Millis> ParseDuration(std::string_view text);

// The shortest exact spelling: 14400000 -> "4h", 90000 -> "1m30s", 0 -> "0s".
std::string FormatDuration(Millis ms);

}  // namespace turnstiled::base
