#include "decode/mta_csv.h"

#include <simdjson.h>

#include <bit>
#include <cstddef>
#include <cstring>
#include <new>
#include <utility>

#include "base/hash.h"
#include "decode/scan.h"

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace turnstiled::decode {

namespace {
constexpr size_t kMaxFields = 13;  // 11 MTA fields, or 13 with the producer's ID,TIMESTAMP
}  // namespace

// Where ScanLine found the commas of one line. `commas` counts them all, including any past
// kMaxFields, which are not recorded.
struct LineScan {
  size_t end = 0;  // offset of the '\n', or the byte count when there is none
  uint32_t commas = 0;
  // A quote or a byte >= 0x80: the line takes the general path, which checks its UTF-8.
  bool rare = false;
  uint32_t comma[kMaxFields];
};

namespace {

constexpr size_t kDate = 6;
constexpr size_t kTime = 7;
constexpr size_t kEntries = 9;
constexpr size_t kExits = 10;

// DATE as MM/DD/YYYY or MM-DD-YY (years 20YY). Returns the day's local civil seconds at 00:00.
bool ParseDate(std::string_view date, int64_t* day_seconds) {
  unsigned mo, d, y;
  if (date.size() == 10) {
    if (date[2] != date[5] || (date[2] != '/' && date[2] != '-')) return false;
    if (!scan::Digits(date.data() + 6, 4, &y)) return false;
  } else if (date.size() == 8) {
    if (date[2] != date[5] || (date[2] != '/' && date[2] != '-')) return false;
    if (!scan::Digits(date.data() + 6, 2, &y)) return false;
    y += 2000;
  } else {
    return false;
  }
  if (!scan::Digits(date.data(), 2, &mo) || !scan::Digits(date.data() + 3, 2, &d)) return false;
  return scan::CivilSeconds(y, mo, d, 0, 0, 0, day_seconds);
}

// TIME as HH:MM:SS, the 8 bytes at p. Returns the seconds since midnight. The bytes are read
// as one word: the two colons are checked, then replaced by '0' so that one test checks the
// six digits.
[[gnu::always_inline]] inline bool ParseTime8(const char* p, int64_t* seconds) {
  uint64_t x;
  std::memcpy(&x, p, 8);
  if constexpr (std::endian::native != std::endian::little) x = __builtin_bswap64(x);
  constexpr uint64_t kColons = 0x0000FF0000FF0000ULL;  // bytes 2 and 5
  if ((x & kColons) != (0x00003A00003A0000ULL)) return false;
  x = (x & ~kColons) | (0x0000300000300000ULL);
  constexpr uint64_t kHigh = 0xF0F0F0F0F0F0F0F0ULL;
  if (((x & kHigh) | (((x + 0x0606060606060606ULL) & kHigh) >> 4)) != 0x3333333333333333ULL) {
    return false;
  }
  x -= 0x3030303030303030ULL;
  auto digit = [x](int i) { return static_cast<unsigned>((x >> (8 * i)) & 0xFF); };
  const unsigned h = digit(0) * 10 + digit(1);
  const unsigned mi = digit(3) * 10 + digit(4);
  const unsigned s = digit(6) * 10 + digit(7);
  if (h > 23 || mi > 59 || s > 59) return false;
  *seconds = h * 3600 + mi * 60 + s;
  return true;
}

bool IsHeaderField(std::string_view first) {
  first = scan::Unquote(scan::Trim(first));
  return first == "C/A" || first == "CA";
}

// Scans one line in a single pass, 16 bytes at a time: where it ends ('\n' or the end of the
// bytes), where its commas are, and whether it holds a quote or a byte that is not ASCII (then
// the caller re-splits it and validates its UTF-8). One mask serves both, so that ASCII rows,
// the real feed, pay nothing for the UTF-8 rule.
void ScanLine(const char* p, size_t n, LineScan* out) {
  uint32_t commas = 0;
  uint32_t rare = 0;
  size_t i = 0;
  auto record = [&](uint32_t mask, size_t base) {
    while (mask != 0) {
      if (commas < kMaxFields)
        out->comma[commas] = static_cast<uint32_t>(base + std::countr_zero(mask));
      ++commas;
      mask &= mask - 1;
    }
  };
#if defined(__SSE2__)
  const __m128i comma = _mm_set1_epi8(',');
  const __m128i newline = _mm_set1_epi8('\n');
  const __m128i quote = _mm_set1_epi8('"');
  for (; i + 16 <= n; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    uint32_t cm = static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, comma)));
    // The sign bit of a byte is set for a quote (0xff from the compare) or a non-ASCII byte.
    const uint32_t rm =
        static_cast<uint32_t>(_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, quote), v)));
    const uint32_t nm = static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, newline)));
    if (nm != 0) {
      const uint32_t before = (1u << std::countr_zero(nm)) - 1;
      record(cm & before, i);
      out->commas = commas;
      out->rare = rare != 0 || (rm & before) != 0;
      out->end = i + static_cast<size_t>(std::countr_zero(nm));
      return;
    }
    rare |= rm;
    record(cm, i);
  }
#endif
  for (; i < n; ++i) {
    const char c = p[i];
    if (c == '\n') break;
    if (c == ',') record(1, i);
    if (c == '"' || (static_cast<unsigned char>(c) & 0x80u) != 0) rare = 1;
  }
  out->commas = commas;
  out->rare = rare != 0;
  out->end = i;
}

}  // namespace

// Bit i of each mask describes byte i of a 64-byte block.
struct BlockMasks {
  uint64_t newline = 0;
  uint64_t comma = 0;
  uint64_t rare = 0;  // a quote or a byte >= 0x80
};

namespace {

#if defined(__SSE2__)
BlockMasks MasksSse2(const char* p) {
  const __m128i comma = _mm_set1_epi8(',');
  const __m128i newline = _mm_set1_epi8('\n');
  const __m128i quote = _mm_set1_epi8('"');
  BlockMasks m;
  for (int k = 0; k < 4; ++k) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * k));
    const auto shift = static_cast<unsigned>(16 * k);
    m.newline |=
        static_cast<uint64_t>(static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, newline))))
        << shift;
    m.comma |=
        static_cast<uint64_t>(static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, comma))))
        << shift;
    m.rare |= static_cast<uint64_t>(static_cast<uint32_t>(
                  _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, quote), v))))
              << shift;
  }
  return m;
}
#endif

#if defined(__x86_64__)
__attribute__((target("avx2"))) BlockMasks MasksAvx2(const char* p) {
  const __m256i comma = _mm256_set1_epi8(',');
  const __m256i newline = _mm256_set1_epi8('\n');
  const __m256i quote = _mm256_set1_epi8('"');
  BlockMasks m;
  for (int k = 0; k < 2; ++k) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32 * k));
    const auto shift = static_cast<unsigned>(32 * k);
    m.newline |= static_cast<uint64_t>(
                     static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, newline))))
                 << shift;
    m.comma |= static_cast<uint64_t>(
                   static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, comma))))
               << shift;
    m.rare |= static_cast<uint64_t>(static_cast<uint32_t>(
                  _mm256_movemask_epi8(_mm256_or_si256(_mm256_cmpeq_epi8(v, quote), v))))
              << shift;
  }
  return m;
}
#endif

[[maybe_unused]] BlockMasks MasksScalar(const char* p) {
  BlockMasks m;
  for (int i = 0; i < 64; ++i) {
    const auto c = static_cast<unsigned char>(p[i]);
    const uint64_t bit = uint64_t{1} << i;
    if (c == '\n') m.newline |= bit;
    if (c == ',') m.comma |= bit;
    if (c == '"' || c >= 0x80) m.rare |= bit;
  }
  return m;
}

bool HaveAvx2() {
#if defined(__x86_64__)
  static const bool avx2 = __builtin_cpu_supports("avx2") != 0;
  return avx2;
#else
  return false;
#endif
}

}  // namespace

DecodeStatus MtaCsvDecoder::DecodeScannedLine(std::string_view line, const LineScan& scan,
                                              Record* out) {
  if (scan.rare || scan::IsSpace(line.front()) || line.size() > max_message_bytes_) {
    return Decode(line, out);  // the general path, with its UTF-8 check
  }
  // A header: the first field is C/A or CA (Decode() also unquotes, which needs a quote,
  // which is rare).
  if (line.front() == 'C') {
    const size_t first_end = scan.commas == 0 ? line.size() : scan.comma[0];
    if (IsHeaderField(line.substr(0, first_end))) return DecodeStatus::kHeader;
  }
  return DecodeScanned(line, scan, out);
}

template <BlockMasks (*kMasks)(const char*)>
[[gnu::always_inline]] inline int64_t MtaCsvDecoder::ScanChunk(std::string_view chunk,
                                                               LineHandler* handler) {
  const char* const data = chunk.data();
  const size_t n = chunk.size();
  Record rec;
  LineScan scan;
  scan.commas = 0;
  scan.rare = false;
  size_t line_start = 0;
  int64_t lines = 0;
  auto finish = [&](size_t end) {
    ++lines;
    if (end > line_start) {
      const std::string_view line(data + line_start, end - line_start);
      scan.end = line.size();
      const DecodeStatus st = DecodeScannedLine(line, scan, &rec);
      handler->OnLine(line, lines, st, rec);
    }
    line_start = end + 1;
    scan.commas = 0;
    scan.rare = false;
  };
  auto commas = [&](uint64_t mask, size_t base) {
    while (mask != 0) {
      if (scan.commas < kMaxFields) {
        scan.comma[scan.commas] =
            static_cast<uint32_t>(base + static_cast<size_t>(std::countr_zero(mask)) - line_start);
      }
      ++scan.commas;
      mask &= mask - 1;
    }
  };
  alignas(64) char tail[64];
  for (size_t base = 0; base < n; base += 64) {
    BlockMasks m;
    if (base + 64 <= n) {
      m = kMasks(data + base);
    } else {
      std::memset(tail, 0, sizeof tail);  // NUL is none of the bytes looked for
      std::memcpy(tail, data + base, n - base);
      m = kMasks(tail);
    }
    uint64_t nl = m.newline;
    uint64_t cm = m.comma;
    uint64_t rare = m.rare;
    while (nl != 0) {
      const int k = std::countr_zero(nl);
      const uint64_t upto = (uint64_t{2} << k) - 1;  // bits 0..k (all of them for k = 63)
      commas(cm & upto, base);
      scan.rare = scan.rare || (rare & upto) != 0;
      cm &= ~upto;
      rare &= ~upto;
      finish(base + static_cast<size_t>(k));
      nl &= nl - 1;
    }
    if (base + 64 > n) {
      const uint64_t valid = (uint64_t{1} << (n - base)) - 1;
      cm &= valid;
      rare &= valid;
    }
    commas(cm, base);
    scan.rare = scan.rare || rare != 0;
  }
  if (line_start < n) finish(n);  // the last line, without its '\n'
  return lines;
}

#if defined(__x86_64__)
// The whole loop is compiled for AVX2, with MasksAvx2 inlined into it; it runs only where the
// CPU has AVX2.
__attribute__((target("avx2"))) int64_t MtaCsvDecoder::ScanChunkAvx2(std::string_view chunk,
                                                                     LineHandler* handler) {
  return ScanChunk<MasksAvx2>(chunk, handler);
}
#endif

int64_t MtaCsvDecoder::ScanChunkBaseline(std::string_view chunk, LineHandler* handler) {
#if defined(__SSE2__)
  return ScanChunk<MasksSse2>(chunk, handler);
#else
  return ScanChunk<MasksScalar>(chunk, handler);
#endif
}

int64_t MtaCsvDecoder::DecodeLines(std::string_view chunk, LineHandler* handler) {
#if defined(__x86_64__)
  if (avx2_) return ScanChunkAvx2(chunk, handler);
#endif
  return ScanChunkBaseline(chunk, handler);
}

MtaCsvDecoder::MtaCsvDecoder(base::LocalTimeConverter zone, int64_t max_message_bytes)
    : max_message_bytes_(static_cast<size_t>(max_message_bytes)),
      avx2_(HaveAvx2()),
      zone_(std::move(zone)) {}

bool MtaCsvDecoder::IsHeader(std::string_view line) {
  const char* comma = static_cast<const char*>(std::memchr(line.data(), ',', line.size()));
  return IsHeaderField(comma == nullptr ? line
                                        : line.substr(0, static_cast<size_t>(comma - line.data())));
}

DecodeStatus MtaCsvDecoder::Decode(std::string_view bytes, Record* out) {
  if (bytes.size() > max_message_bytes_) return DecodeStatus::kOversized;
  bool saw_header = false;
  size_t pos = 0;
  while (pos < bytes.size()) {
    LineScan scan;
    ScanLine(bytes.data() + pos, bytes.size() - pos, &scan);
    const std::string_view line = bytes.substr(pos, scan.end);
    pos += scan.end + 1;
    DecodeStatus status;
    if (scan.rare || line.empty() || scan::IsSpace(line.front())) {
      // The rare shapes (quotes, non-ASCII, leading blanks, blank lines) take the general path.
      if (scan.rare && !simdjson::validate_utf8(line.data(), line.size())) {
        return DecodeStatus::kNotUtf8;
      }
      const std::string_view trimmed = scan::Trim(line);
      if (trimmed.empty()) continue;
      if (IsHeader(trimmed)) {
        saw_header = true;
        continue;
      }
      status = DecodeLine(trimmed, out);
    } else {
      const size_t first_end = scan.commas == 0 ? line.size() : scan.comma[0];
      if (IsHeaderField(line.substr(0, first_end))) {
        saw_header = true;
        continue;
      }
      status = DecodeScanned(line, scan, out);
    }
    // One record per message: whatever follows may only be blank or header lines.
    if (pos < bytes.size() && !simdjson::validate_utf8(bytes.data() + pos, bytes.size() - pos)) {
      return DecodeStatus::kNotUtf8;
    }
    while (pos < bytes.size()) {
      std::string_view rest = bytes.substr(pos);
      const std::string_view more = scan::Trim(scan::NextLine(&rest));
      pos = bytes.size() - rest.size();
      if (!more.empty() && !IsHeader(more)) return DecodeStatus::kBadFieldCount;
    }
    return status;
  }
  return saw_header ? DecodeStatus::kHeader : DecodeStatus::kEmpty;
}

DecodeStatus MtaCsvDecoder::DecodeScanned(std::string_view line, const LineScan& scan,
                                          Record* out) {
  const size_t n = scan.commas + 1;
  if (n != 11 && n != 13) return DecodeStatus::kBadFieldCount;
  // The fields are read straight from the comma positions: no array of field views is made
  // (its stores and the loads right after them were a third of the decoder's time).
  const char* const p = line.data();
  const uint32_t* const c = scan.comma;
  if (c[0] == 0 || c[1] == c[0] + 1 || c[2] == c[1] + 1 || c[3] == c[2] + 1) {
    return DecodeStatus::kMissingField;
  }
  auto field = [&](size_t i) {  // field i of at least two, not the last
    return std::string_view(p + c[i - 1] + 1, c[i] - c[i - 1] - 1);
  };
  const DecodeStatus s =
      DecodeValues(p, field(kDate), field(kTime), field(kEntries),
                   // the last field: a trailing '\r' or blanks go
                   n == 13 ? field(kExits) : scan::Trim(line.substr(c[kExits - 1] + 1)), out);
  if (s != DecodeStatus::kOk) return s;
  // C/A, UNIT and SCP are the first three fields, so the device is a prefix of the row.
  out->device = std::string_view(p, c[2]);
  out->station = std::string_view(p + c[2] + 1, c[3] - c[2] - 1);
  return DecodeStatus::kOk;
}

[[gnu::always_inline]] inline DecodeStatus MtaCsvDecoder::DecodeValues(
    const char* line, std::string_view date, std::string_view time, std::string_view entries,
    std::string_view exits, Record* out) {
  // A file holds a few dates over many rows: the day comes from the dates seen (DateOf).
  const DateSlot* const day = DateOf(date);
  if (day == nullptr) return DecodeStatus::kBadTime;
  int64_t time_of_day;
  if (time.size() != 8 || !ParseTime8(time.data(), &time_of_day)) return DecodeStatus::kBadTime;
  DecodeStatus s = scan::ParseCounterIn(line, entries, &out->entries);
  if (s != DecodeStatus::kOk) return s;
  s = scan::ParseCounterIn(line, exits, &out->exits);
  if (s != DecodeStatus::kOk) return s;
  out->event_ms = EventMs(*day, time_of_day);
  return DecodeStatus::kOk;
}

bool MtaCsvDecoder::FillDate(std::string_view date, uint64_t lo, uint16_t hi, DateSlot* slot) {
  int64_t day;
  if (!ParseDate(date, &day)) {
    slot->len = 0;
    return false;
  }
  slot->lo = lo;
  slot->hi = hi;
  slot->len = date.size();
  slot->day_seconds = day;
  slot->uniform = zone_.DayOffset(day, &slot->utc_offset);
  return true;
}

DecodeStatus MtaCsvDecoder::DecodeLine(std::string_view line, Record* out) {
  std::string_view f[kMaxFields];
  size_t n = 0;
  bool quoted = false;
  const char* p = line.data();
  const char* const end = line.data() + line.size();
  for (;;) {
    if (n == kMaxFields) return DecodeStatus::kBadFieldCount;
    if (p < end && *p == '"') {
      // A double-quoted field may hold commas; it ends at the next quote ("" is not unescaped).
      const char* q = static_cast<const char*>(std::memchr(p + 1, '"', end - p - 1));
      if (q == nullptr) return DecodeStatus::kBadFieldCount;
      f[n++] = std::string_view(p + 1, static_cast<size_t>(q - p - 1));
      quoted = true;
      p = q + 1;
      if (p == end) break;
      if (*p != ',') return DecodeStatus::kBadFieldCount;
      ++p;
      continue;
    }
    const char* c = static_cast<const char*>(std::memchr(p, ',', static_cast<size_t>(end - p)));
    if (c == nullptr) {
      f[n++] = std::string_view(p, static_cast<size_t>(end - p));
      break;
    }
    f[n++] = std::string_view(p, static_cast<size_t>(c - p));
    p = c + 1;
  }
  if (n != 11 && n != 13) return DecodeStatus::kBadFieldCount;
  return DecodeFields(line, f, n, quoted, out);
}

DecodeStatus MtaCsvDecoder::DecodeFields(std::string_view line, const std::string_view* f,
                                         size_t /*n*/, bool quoted, Record* out) {
  if (f[0].empty() || f[1].empty() || f[2].empty() || f[3].empty()) {
    return DecodeStatus::kMissingField;
  }
  const DecodeStatus s = DecodeValues(line.data(), f[kDate], f[kTime], f[kEntries], f[kExits], out);
  if (s != DecodeStatus::kOk) return s;
  if (!quoted) {
    // C/A, UNIT and SCP are the first three fields, so the device is a prefix of the row.
    out->device = std::string_view(line.data(), static_cast<size_t>(f[2].end() - line.data()));
  } else {
    device_.assign(f[0]);
    device_.push_back(',');
    device_.append(f[1]);
    device_.push_back(',');
    device_.append(f[2]);
    out->device = device_;
  }
  out->station = f[3];
  return DecodeStatus::kOk;
}

}  // namespace turnstiled::decode
