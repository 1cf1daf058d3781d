#include "base/duration.h"

#include <charconv>

namespace turnstiled::base {

std::optional<Millis> ParseDuration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  Millis total = 0;
  std::string_view rest = text;
  while (!rest.empty()) {
    if (rest.front() < '0' || rest.front() > '9') return std::nullopt;
    int64_t n = 0;
    auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), n);
    if (ec != std::errc() || ptr == rest.data()) return std::nullopt;
    rest.remove_prefix(static_cast<size_t>(ptr - rest.data()));
    Millis unit = 0;
    if (rest.starts_with("ms")) {
      unit = 1;
      rest.remove_prefix(2);
    } else if (!rest.empty()) {
      switch (rest.front()) {
        case 's':
          unit = kSecond;
          break;
        case 'm':
          unit = kMinute;
          break;
        case 'h':
          unit = kHour;
          break;
        case 'd':
          unit = kDay;
          break;
        default:
          return std::nullopt;
      }
      rest.remove_prefix(1);
    } else {
      return std::nullopt;  // a bare number has no unit
    }
    if (n > (INT64_MAX / 2) / unit) return std::nullopt;
    total += n * unit;
  }
  return total;
}

std::string FormatDuration(Millis ms) {
  if (ms == 0) return "0s";
  std::string out;
  const struct {
    Millis unit;
    const char* name;
  } kUnits[] = {{kDay, "d"}, {kHour, "h"}, {kMinute, "m"}, {kSecond, "s"}, {1, "ms"}};
  for (const auto& u : kUnits) {
    if (ms >= u.unit) {
      out += std::to_string(ms / u.unit) + u.name;
      ms %= u.unit;
    }
  }
  return out;
}

}  // namespace turnstiled::base
