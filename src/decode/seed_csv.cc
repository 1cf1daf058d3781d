#include "decode/seed_csv.h"

#include <simdjson.h>

#include <cstring>
#include <utility>

#include "decode/scan.h"

namespace turnstiled::decode {
namespace {

constexpr size_t kFields = 7;

// One value of a row. `doubled` is the quote character that encloses the value when the
// value also holds that character twice in a row (a CSV escape to undo), and 0 otherwise.
struct Field {
  std::string_view text;
  char doubled = 0;
};

constexpr bool IsBlankChar(char c) { return c == ' ' || c == '\t'; }

// The offset of the quote that closes a value opened by `q` at line[open]: the first `q` that
// is followed by blanks and then a comma or the end of the line. So a producer that writes
// 'B'WAY-LAFAYETTE' without escaping is read as it meant, and so is a CSV writer's
// 'B''WAY-LAFAYETTE'. Returns npos when no quote closes the value.
size_t ClosingQuote(std::string_view line, size_t open, char q) {
  for (size_t i = line.find(q, open + 1); i != std::string_view::npos; i = line.find(q, i + 1)) {
    size_t j = i + 1;
    while (j < line.size() && IsBlankChar(line[j])) ++j;
    if (j == line.size() || line[j] == ',') return i;
  }
  return std::string_view::npos;
}

// Splits `line` at commas into trimmed fields with one pair of ' or " quotes removed; a quoted
// value may hold commas. Returns the field count, or kFields + 1 when there are more fields
// than kFields or a quote is not closed (both are a bad field count to the caller).
size_t SplitFields(std::string_view line, Field* f) {
  size_t n = 0;
  size_t i = 0;
  for (;;) {
    if (n == kFields) return kFields + 1;
    while (i < line.size() && IsBlankChar(line[i])) ++i;
    if (i < line.size() && (line[i] == '"' || line[i] == '\'')) {
      const char q = line[i];
      const size_t close = ClosingQuote(line, i, q);
      if (close == std::string_view::npos) return kFields + 1;
      const std::string_view text = line.substr(i + 1, close - i - 1);
      const char pair[2] = {q, q};
      f[n++] = {text, text.find(std::string_view(pair, 2)) == std::string_view::npos ? '\0' : q};
      i = close + 1;
      while (i < line.size() && IsBlankChar(line[i])) ++i;
      if (i == line.size()) return n;
      ++i;  // the comma ClosingQuote found
      continue;
    }
    const size_t comma = line.find(',', i);
    if (comma == std::string_view::npos) {
      f[n++] = {scan::Trim(line.substr(i))};
      return n;
    }
    f[n++] = {scan::Trim(line.substr(i, comma - i))};
    i = comma + 1;
  }
}

// Appends `f` to `out`, turning each doubled quote back into one.
void AppendUnescaped(const Field& f, std::string* out) {
  if (f.doubled == 0) {
    out->append(f.text);
    return;
  }
  for (size_t i = 0; i < f.text.size(); ++i) {
    out->push_back(f.text[i]);
    if (f.text[i] == f.doubled && i + 1 < f.text.size() && f.text[i + 1] == f.doubled) ++i;
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
  if (!simdjson::validate_utf8(bytes.data(), bytes.size())) return DecodeStatus::kNotUtf8;
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
  Field f[kFields];
  if (SplitFields(line, f) != kFields) return DecodeStatus::kBadFieldCount;
  const Field& station = f[1];
  const Field& turnstile = f[2];
  const Field& device = f[3];
  if (station.text.empty() || turnstile.text.empty() || device.text.empty() || f[6].text.empty()) {
    return DecodeStatus::kMissingField;
  }
  scan::IsoDateTime t;
  if (!scan::ParseIsoDateTime(f[6].text, &t)) return DecodeStatus::kBadTime;
  DecodeStatus s = scan::ParseInt64(f[4].text, &out->entries);
  if (s != DecodeStatus::kOk) return s;
  s = scan::ParseInt64(f[5].text, &out->exits);
  if (s != DecodeStatus::kOk) return s;

  const int64_t utc_seconds =
      t.has_zone ? t.seconds - t.offset_seconds : zone_.ToUtcSeconds(t.seconds);
  out->event_ms = utc_seconds * 1000 + t.millis;
  device_.clear();
  AppendUnescaped(turnstile, &device_);
  device_.push_back('/');
  AppendUnescaped(device, &device_);
  out->device = device_;
  if (station.doubled == 0) {
    out->station = station.text;
  } else {
    station_.clear();
    AppendUnescaped(station, &station_);
    out->station = station_;
  }
  return DecodeStatus::kOk;
}

}  // namespace turnstiled::decode
