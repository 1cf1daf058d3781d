#include "base/civil_time.h"

#include <cstdio>

namespace turnstiled::base {

void AppendIsoUtc(int64_t epoch_ms, std::string* out) {
  const int64_t secs = FloorDiv(epoch_ms, 1000);
  const int64_t ms = FloorMod(epoch_ms, 1000);
  const int64_t days = FloorDiv(secs, 86400);
  const int64_t sod = FloorMod(secs, 86400);
  const CivilDate d = CivilFromDays(days);
  char buf[48];
  int n = std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02lld:%02lld:%02lld",
                        static_cast<long long>(d.year), d.month, d.day,
                        static_cast<long long>(sod / 3600), static_cast<long long>(sod / 60 % 60),
                        static_cast<long long>(sod % 60));
  if (ms != 0) n += std::snprintf(buf + n, sizeof buf - n, ".%03lld", static_cast<long long>(ms));
  out->append(buf, static_cast<size_t>(n));
  out->push_back('Z');
}

std::string FormatIsoUtc(int64_t epoch_ms) {
  std::string s;
  AppendIsoUtc(epoch_ms, &s);
  return s;
}

std::string FormatDateUtc(int64_t epoch_ms) {
  const CivilDate d = CivilFromDays(FloorDiv(FloorDiv(epoch_ms, 1000), 86400));
  char buf[24];
  int n = std::snprintf(buf, sizeof buf, "%04lld-%02u-%02u", static_cast<long long>(d.year),
                        d.month, d.day);
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace turnstiled::base
