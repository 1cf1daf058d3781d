#include "base/civil_time.h"

#include <cstdint>
#include <cstdio>
#include <cstring>

namespace turnstiled::base {

namespace {
// Writes v as exactly `width` decimal digits, zero-padded; v must fit.
char* PutDigits(char* p, uint64_t v, int width) {
  for (int i = width - 1; i >= 0; --i) {
    p[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
  return p + width;
}
}  // namespace

// Every sink formats two to four of these per row: no printf, and the date part is made once
// per day and thread (a batch's rows share a few days).
void AppendIsoUtc(int64_t epoch_ms, std::string* out) {
  const int64_t secs = FloorDiv(epoch_ms, 1000);
  const int64_t ms = FloorMod(epoch_ms, 1000);
  const int64_t days = FloorDiv(secs, 86400);
  const int64_t sod = FloorMod(secs, 86400);
  thread_local int64_t date_days = INT64_MIN;  // the day `date` holds, if any
  thread_local char date[11];                  // "YYYY-MM-DDT"
  if (days != date_days) {
    const CivilDate d = CivilFromDays(days);
    if (d.year < 0 || d.year > 9999) {
      char buf[48];
      int n = std::snprintf(
          buf, sizeof buf, "%04lld-%02u-%02uT%02lld:%02lld:%02lld", static_cast<long long>(d.year),
          d.month, d.day, static_cast<long long>(sod / 3600), static_cast<long long>(sod / 60 % 60),
          static_cast<long long>(sod % 60));
      if (ms != 0) {
        n += std::snprintf(buf + n, sizeof buf - n, ".%03lld", static_cast<long long>(ms));
      }
      out->append(buf, static_cast<size_t>(n));
      out->push_back('Z');
      return;
    }
    char* p = PutDigits(date, static_cast<uint64_t>(d.year), 4);
    *p++ = '-';
    p = PutDigits(p, d.month, 2);
    *p++ = '-';
    p = PutDigits(p, d.day, 2);
    *p = 'T';
    date_days = days;
  }
  char buf[32];
  std::memcpy(buf, date, sizeof date);
  char* p = buf + sizeof date;
  p = PutDigits(p, static_cast<uint64_t>(sod / 3600), 2);
  *p++ = ':';
  p = PutDigits(p, static_cast<uint64_t>(sod / 60 % 60), 2);
  *p++ = ':';
  p = PutDigits(p, static_cast<uint64_t>(sod % 60), 2);
  if (ms != 0) {
    *p++ = '.';
    p = PutDigits(p, static_cast<uint64_t>(ms), 3);
  }
  *p++ = 'Z';
  out->append(buf, static_cast<size_t>(p - buf));
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
