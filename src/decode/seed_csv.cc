#include "decode/seed_csv.h"

#include <cstring>
#include <utility>

#include "decode/scan.h"

namespace turnstiled::decode {
namespace {

constexpr size_t kFields = 7;

// Splits `line` at commas into trimmed fields with one pair of ' or " quotes removed; a quoted
// value may hold commas. Returns the field count, or kFields + 1 when there are more fields
// than kFields or a quote is not closed (both are a bad field count to the caller).
size_t SplitFields(std::string_view line, std::string_view* f) {
  size_t n = 0;
  size_t i = 0;
  for (;;) {
    if (n == kFields) return kFields + 1;
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i < line.size() && (line[i] == '"' || line[i] == '\'')) {
      const char q = line[i];
      const size_t close = line.find(q, i + 1);
      if (close == std::string_view::npos) return kFields + 1;
      f[n++] = line.substr(i + 1, close - i - 1);
      i = close + 1;
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
      if (i == line.size()) return n;
      if (line[i] != ',') return kFields + 1;
      ++i;
      continue;
    }
    const size_t comma = line.find(',', i);
    if (comma == std::string_view::npos) {
      f[n++] = scan::Trim(line.substr(i));
      return n;
    }
    f[n++] = scan::Trim(line.substr(i, comma - i));
    i = comma + 1;
  }
}

bool IsHeader(std::string_view line) {
  const size_t comma = line.find(',');
  return scan::Unquote(scan::Trim(line.substr(0, comma))) == "timestamp";
}

}  // namespace

SeedCsvDecoder::SeedCsvDecoder(base::LocalTimeConverter zone, int64_t max_message_bytes)
    : max_message_bytes_(static_cast<size_t>(max_message_bytes)), zone_(std::move(zone)) {}

DecodeStatus SeedCsvDecoder::Decode(std::string_view bytes, Record* out) {
  if (bytes.size() > max_message_bytes_) return DecodeStatus::kOversized;
  bool saw_header = false;
  std::string_view rest = bytes;
  while (!rest.empty()) {
    const std::string_view line = scan::Trim(scan::NextLine(&rest));
    if (line.empty()) continue;
    if (IsHeader(line)) {
      saw_header = true;
      continue;
    }
    const DecodeStatus status = DecodeLine(line, out);
    while (!rest.empty()) {
      const std::string_view more = scan::Trim(scan::NextLine(&rest));
      if (!more.empty() && !IsHeader(more)) return DecodeStatus::kBadFieldCount;
    }
    return status;
  }
  return saw_header ? DecodeStatus::kHeader : DecodeStatus::kEmpty;
}

DecodeStatus SeedCsvDecoder::DecodeLine(std::string_view line, Record* out) {
  std::string_view f[kFields];
  if (SplitFields(line, f) != kFields) return DecodeStatus::kBadFieldCount;
  const std::string_view station = f[1];
  const std::string_view turnstile = f[2];
  const std::string_view device = f[3];
  if (station.empty() || turnstile.empty() || device.empty() || f[6].empty()) {
    return DecodeStatus::kMissingField;
  }
  scan::IsoDateTime t;
  if (!scan::ParseIsoDateTime(f[6], &t)) return DecodeStatus::kBadTime;
  DecodeStatus s = scan::ParseInt64(f[4], &out->entries);
  if (s != DecodeStatus::kOk) return s;
  s = scan::ParseInt64(f[5], &out->exits);
  if (s != DecodeStatus::kOk) return s;

  const int64_t utc_seconds =
      t.has_zone ? t.seconds - t.offset_seconds : zone_.ToUtcSeconds(t.seconds);
  out->event_ms = utc_seconds * 1000 + t.millis;
  device_.assign(turnstile);
  device_.push_back('/');
  device_.append(device);
  out->device = device_;
  out->station = station;
  return DecodeStatus::kOk;
}

}  // namespace turnstiled::decode
