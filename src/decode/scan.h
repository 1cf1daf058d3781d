// Small byte-level helpers shared by the decoders: trimming, line splitting, fixed-width digit
// parsing, integer fields and ISO-8601 / RFC 3339 date-times.
//
// Everything here is inline, allocation-free and locale-free, because it runs once or more per
// record. Functions return false (or a status) on bad input; none throws.
#pragma once

#include <bit>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "base/civil_time.h"
#include "decode/decoder.h"

namespace turnstiled::decode::scan {

constexpr bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

constexpr std::string_view Trim(std::string_view s) {
  size_t b = 0;
  size_t e = s.size();
  while (b < e && IsSpace(s[b])) ++b;
  while (e > b && IsSpace(s[e - 1])) --e;
  return s.substr(b, e - b);
}

constexpr bool IsBlank(std::string_view s) { return Trim(s).empty(); }

// Splits off the first line of *rest (without its '\n'; a trailing '\r' is left to the
// caller's Trim) and advances *rest past it.
inline std::string_view NextLine(std::string_view* rest) {
  const char* nl = static_cast<const char*>(std::memchr(rest->data(), '\n', rest->size()));
  if (nl == nullptr) {
    std::string_view line = *rest;
    *rest = rest->substr(rest->size());
    return line;
  }
  const size_t n = static_cast<size_t>(nl - rest->data());
  std::string_view line = rest->substr(0, n);
  rest->remove_prefix(n + 1);
  return line;
}

// Removes one pair of matching quotes ('"' or '\'') around a field, if present.
constexpr std::string_view Unquote(std::string_view s) {
  if (s.size() >= 2 && (s.front() == '"' || s.front() == '\'') && s.back() == s.front()) {
    return s.substr(1, s.size() - 2);
  }
  return s;
}

// Parses exactly `n` decimal digits at p. Returns false if any is not a digit.
inline bool Digits(const char* p, int n, unsigned* out) {
  unsigned v = 0;
  for (int i = 0; i < n; ++i) {
    const unsigned d = static_cast<unsigned char>(p[i]) - '0';
    if (d > 9) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

// A whole field as a signed 64-bit integer: optional '-', then digits (leading zeros allowed).
// Empty -> kMissingField; anything else that is not an in-range integer -> kBadNumber.
inline DecodeStatus ParseInt64(std::string_view s, int64_t* out) {
  if (s.empty()) return DecodeStatus::kMissingField;
  const char* first = s.data();
  const char* last = s.data() + s.size();
  // from_chars refuses a leading '+', which people write; a sign must still precede a digit.
  if (*first == '+' && s.size() > 1 && s[1] != '-') ++first;
  const auto r = std::from_chars(first, last, *out);
  if (r.ec != std::errc() || r.ptr != last || first == last) return DecodeStatus::kBadNumber;
  return DecodeStatus::kOk;
}

// ParseInt64(Trim(s)) with a fast path for what the feeds send: 1 to 18 plain digits, which
// cannot overflow.
inline DecodeStatus ParseCounter(std::string_view s, int64_t* out) {
  if (!s.empty() && s.size() <= 18) {
    int64_t v = 0;
    size_t i = 0;
    for (; i < s.size(); ++i) {
      const unsigned d = static_cast<unsigned char>(s[i]) - '0';
      if (d > 9) break;
      v = v * 10 + static_cast<int64_t>(d);
    }
    if (i == s.size()) {
      *out = v;
      return DecodeStatus::kOk;
    }
  }
  return ParseInt64(Trim(s), out);
}

// Eight ASCII bytes, the first in the lowest byte, as the number they spell if all are digits.
// Three multiplies fold neighbouring digits pairwise: 8 digits -> 4 two-digit lanes -> 2
// four-digit lanes -> 1.
inline bool EightDigits(uint64_t x, uint64_t* out) {
  // A digit is 0x30..0x39: its high nibble is 3, and adding 6 does not carry out of the low one.
  constexpr uint64_t kHigh = 0xF0F0F0F0F0F0F0F0ULL;
  if (((x & kHigh) | (((x + 0x0606060606060606ULL) & kHigh) >> 4)) != 0x3333333333333333ULL) {
    return false;
  }
  x -= 0x3030303030303030ULL;
  x = ((x * 10) + (x >> 8)) & 0x00FF00FF00FF00FFULL;    // lane i: 10*d[2i] + d[2i+1]
  x = ((x * 100) + (x >> 16)) & 0x0000FFFF0000FFFFULL;  // 4-digit lanes
  *out = ((x * 10000) + (x >> 32)) & 0xFFFFFFFFULL;     // the 8-digit value
  return true;
}

// The up to 8 bytes that end at `end`, as a number if they are all digits. Reads the 8 bytes
// before `end`, which the caller guarantees are readable; those before the field count as '0'.
// REQUIRES: 1 <= len <= 8.
inline bool DigitsEndingAt(const char* end, size_t len, uint64_t* out) {
  uint64_t x;
  std::memcpy(&x, end - 8, 8);
  const uint64_t keep = ~uint64_t{0} << (8 * (8 - len));  // the field's bytes are the high ones
  return EightDigits((x & keep) | (0x3030303030303030ULL & ~keep), out);
}

// ParseCounter for a field of a line that starts at `begin`. A field of up to 8 digits that
// ends 8 bytes or more into the line (every counter of a CSV row does), or of 9 to 16 that ends
// 16 or more into it, is read 8 bytes at a time, with no loop over its digits.
[[gnu::always_inline]] inline DecodeStatus ParseCounterIn(const char* begin, std::string_view s,
                                                          int64_t* out) {
  if constexpr (std::endian::native == std::endian::little) {
    const char* const end = s.data() + s.size();
    const auto room = static_cast<size_t>(end - begin);
    uint64_t lo;
    uint64_t hi;
    if (!s.empty() && s.size() <= 8 && room >= 8) {
      if (DigitsEndingAt(end, s.size(), &lo)) {
        *out = static_cast<int64_t>(lo);
        return DecodeStatus::kOk;
      }
    } else if (s.size() > 8 && s.size() <= 16 && room >= 16) {
      if (DigitsEndingAt(end, 8, &lo) && DigitsEndingAt(end - 8, s.size() - 8, &hi)) {
        *out = static_cast<int64_t>(hi * 100000000ULL + lo);
        return DecodeStatus::kOk;
      }
    }
  }
  return ParseCounter(s, out);
}

// Seconds since 1970-01-01T00:00:00 of a validated civil date and time, in whatever zone the
// caller means. Returns false for a date or time that does not exist.
inline bool CivilSeconds(int64_t y, unsigned mo, unsigned d, unsigned h, unsigned mi, unsigned s,
                         int64_t* out) {
  if (!base::IsValidDate(y, mo, d) || h > 23 || mi > 59 || s > 59) return false;
  *out = base::DaysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
  return true;
}

// An ISO-8601 date-time: `YYYY-MM-DD[T| ]HH:MM:SS[.fraction][Z|+HH:MM|-HH:MM|+HHMM|+HH]`.
struct IsoDateTime {
  int64_t seconds = 0;  // civil seconds as written (local, or in the stated offset)
  int millis = 0;       // fraction, truncated to milliseconds
  bool has_zone = false;
  int offset_seconds = 0;  // the stated offset (local - UTC); 0 for Z
};

inline bool ParseIsoDateTime(std::string_view s, IsoDateTime* out) {
  if (s.size() < 19) return false;
  const char* p = s.data();
  unsigned y, mo, d, h, mi, sec;
  if (!Digits(p, 4, &y) || p[4] != '-' || !Digits(p + 5, 2, &mo) || p[7] != '-' ||
      !Digits(p + 8, 2, &d) || (p[10] != 'T' && p[10] != 't' && p[10] != ' ') ||
      !Digits(p + 11, 2, &h) || p[13] != ':' || !Digits(p + 14, 2, &mi) || p[16] != ':' ||
      !Digits(p + 17, 2, &sec)) {
    return false;
  }
  if (!CivilSeconds(y, mo, d, h, mi, sec, &out->seconds)) return false;
  size_t i = 19;
  out->millis = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    const size_t start = i;
    int scale = 100;
    while (i < s.size() && static_cast<unsigned>(s[i] - '0') <= 9) {
      out->millis += (s[i] - '0') * scale;
      scale /= 10;
      ++i;
    }
    if (i == start) return false;
  }
  out->has_zone = false;
  out->offset_seconds = 0;
  if (i == s.size()) return true;
  if (s[i] == 'Z' || s[i] == 'z') {
    out->has_zone = true;
    return i + 1 == s.size();
  }
  if (s[i] != '+' && s[i] != '-') return false;
  const int sign = s[i] == '-' ? -1 : 1;
  const std::string_view z = s.substr(i + 1);
  unsigned oh = 0, om = 0;
  if (z.size() == 5 && z[2] == ':') {
    if (!Digits(z.data(), 2, &oh) || !Digits(z.data() + 3, 2, &om)) return false;
  } else if (z.size() == 4) {
    if (!Digits(z.data(), 2, &oh) || !Digits(z.data() + 2, 2, &om)) return false;
  } else if (z.size() == 2) {
    if (!Digits(z.data(), 2, &oh)) return false;
  } else {
    return false;
  }
  if (oh > 23 || om > 59) return false;
  out->has_zone = true;
  out->offset_seconds = sign * static_cast<int>(oh * 3600 + om * 60);
  return true;
}

}  // namespace turnstiled::decode::scan
