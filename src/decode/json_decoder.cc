#include "decode/json_decoder.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <utility>

#include "decode/scan.h"

namespace turnstiled::decode {
namespace {

namespace od = simdjson::ondemand;

// Epoch numbers at or above this magnitude are milliseconds, below it seconds. 1e11 seconds
// is the year 5138; 1e11 milliseconds is 1973-03-03, so neither reading is plausible for the
// other side of the line.
constexpr double kMillisThreshold = 1e11;
// Beyond this a double no longer holds every integer exactly.
constexpr double kMaxExactDouble = 9007199254740992.0;  // 2^53
// An epoch time must fall in the years 0000..9999, the range of a date-time string, so that
// no later arithmetic on it (window ends, watermarks) can overflow.
constexpr int64_t kMinEventMs = -62167219200000;  // 0000-01-01T00:00:00Z
constexpr int64_t kMaxEventMs = 253402300799999;  // 9999-12-31T23:59:59.999Z

DecodeStatus CheckedEventMs(int64_t ms, int64_t* event_ms) {
  if (ms < kMinEventMs || ms > kMaxEventMs) return DecodeStatus::kBadTime;
  *event_ms = ms;
  return DecodeStatus::kOk;
}

// A type error is the sender's schema; anything else from simdjson is malformed JSON.
DecodeStatus FromError(simdjson::error_code e, DecodeStatus on_type_error) {
  return e == simdjson::INCORRECT_TYPE ? on_type_error : DecodeStatus::kBadFieldCount;
}

DecodeStatus ReadCounter(od::value value, int64_t* out) {
  od::json_type type;
  if (auto e = value.type().get(type)) return FromError(e, DecodeStatus::kWrongType);
  if (type != od::json_type::number) return DecodeStatus::kWrongType;
  od::number_type kind;
  if (auto e = value.get_number_type().get(kind)) return FromError(e, DecodeStatus::kBadNumber);
  switch (kind) {
    case od::number_type::signed_integer:
      if (value.get_int64().get(*out)) return DecodeStatus::kBadNumber;
      return DecodeStatus::kOk;
    case od::number_type::unsigned_integer:  // above INT64_MAX
      return DecodeStatus::kBadNumber;
    case od::number_type::floating_point_number: {
      // 12.0 or 1.2e3 is accepted: many JSON writers print every number as a double.
      double d;
      if (value.get_double().get(d)) return DecodeStatus::kBadNumber;
      if (!(std::fabs(d) <= kMaxExactDouble) || std::trunc(d) != d) {
        return DecodeStatus::kBadNumber;
      }
      *out = static_cast<int64_t>(d);
      return DecodeStatus::kOk;
    }
  }
  return DecodeStatus::kBadNumber;
}

// REQUIRES: `value` is a string.
DecodeStatus ReadString(od::value value, std::string* out) {
  std::string_view s;
  if (auto e = value.get_string().get(s)) return FromError(e, DecodeStatus::kWrongType);
  if (s.empty()) return DecodeStatus::kMissingField;
  out->assign(s);
  return DecodeStatus::kOk;
}

// The type is asked first, so that malformed JSON ('S', a bare word) is not taken for a
// string of the wrong type.
DecodeStatus ReadStation(od::value value, std::string* out) {
  od::json_type type;
  if (auto e = value.type().get(type)) return FromError(e, DecodeStatus::kWrongType);
  if (type != od::json_type::string) return DecodeStatus::kWrongType;
  return ReadString(value, out);
}

// A string, or an integer rendered in decimal.
DecodeStatus ReadDevice(od::value value, std::string* out) {
  od::json_type type;
  if (auto e = value.type().get(type)) return FromError(e, DecodeStatus::kWrongType);
  if (type == od::json_type::string) return ReadString(value, out);
  if (type != od::json_type::number) return DecodeStatus::kWrongType;
  od::number_type kind;
  if (auto e = value.get_number_type().get(kind)) return FromError(e, DecodeStatus::kWrongType);
  char buf[24];
  std::to_chars_result r{};
  if (kind == od::number_type::signed_integer) {
    int64_t v;
    if (value.get_int64().get(v)) return DecodeStatus::kWrongType;
    r = std::to_chars(buf, buf + sizeof buf, v);
  } else if (kind == od::number_type::unsigned_integer) {
    uint64_t v;
    if (value.get_uint64().get(v)) return DecodeStatus::kWrongType;
    r = std::to_chars(buf, buf + sizeof buf, v);
  } else {
    return DecodeStatus::kWrongType;
  }
  out->assign(buf, static_cast<size_t>(r.ptr - buf));
  return DecodeStatus::kOk;
}

}  // namespace

JsonDecoder::JsonDecoder(base::LocalTimeConverter zone, int64_t max_message_bytes,
                         config::JsonFields fields)
    : max_message_bytes_(static_cast<size_t>(max_message_bytes)),
      fields_(std::move(fields)),
      zone_(std::move(zone)) {}

DecodeStatus JsonDecoder::ReadTime(od::value value, int64_t* event_ms) {
  od::json_type type;
  if (auto e = value.type().get(type)) return FromError(e, DecodeStatus::kWrongType);
  if (type == od::json_type::string) {
    std::string_view s;
    if (value.get_string().get(s)) return DecodeStatus::kBadTime;
    scan::IsoDateTime t;
    if (!scan::ParseIsoDateTime(s, &t)) return DecodeStatus::kBadTime;
    const int64_t utc = t.has_zone ? t.seconds - t.offset_seconds : zone_.ToUtcSeconds(t.seconds);
    *event_ms = utc * 1000 + t.millis;
    return DecodeStatus::kOk;
  }
  if (type != od::json_type::number) return DecodeStatus::kWrongType;
  od::number_type kind;
  if (auto e = value.get_number_type().get(kind)) return FromError(e, DecodeStatus::kBadTime);
  if (kind == od::number_type::signed_integer) {
    int64_t v;
    if (value.get_int64().get(v)) return DecodeStatus::kBadTime;
    const bool millis =
        v >= static_cast<int64_t>(kMillisThreshold) || v <= -static_cast<int64_t>(kMillisThreshold);
    return CheckedEventMs(millis ? v : v * 1000, event_ms);
  }
  if (kind == od::number_type::floating_point_number) {
    double d;
    if (value.get_double().get(d)) return DecodeStatus::kBadTime;
    const double ms = std::fabs(d) >= kMillisThreshold ? d : d * 1000.0;
    if (!(std::fabs(ms) <= kMaxExactDouble)) return DecodeStatus::kBadTime;
    return CheckedEventMs(std::llround(ms), event_ms);
  }
  return DecodeStatus::kBadTime;  // an unsigned integer above INT64_MAX
}

DecodeStatus JsonDecoder::Decode(std::string_view bytes, Record* out) {
  if (bytes.size() > max_message_bytes_) return DecodeStatus::kOversized;
  if (scan::IsBlank(bytes)) return DecodeStatus::kEmpty;
  // On-Demand is lazy and would not look at bytes it skips, so check the whole message.
  if (!simdjson::validate_utf8(bytes.data(), bytes.size())) return DecodeStatus::kNotUtf8;

  const size_t need = bytes.size() + simdjson::SIMDJSON_PADDING;
  if (padded_.size() < need) padded_.resize(need);
  std::memcpy(padded_.data(), bytes.data(), bytes.size());
  std::memset(padded_.data() + bytes.size(), 0, simdjson::SIMDJSON_PADDING);

  od::document doc;
  if (parser_.iterate(padded_.data(), bytes.size(), padded_.size()).get(doc)) {
    return DecodeStatus::kBadFieldCount;
  }
  od::json_type type;
  if (doc.type().get(type) || type != od::json_type::object) return DecodeStatus::kBadFieldCount;
  od::object object;
  if (doc.get_object().get(object)) return DecodeStatus::kBadFieldCount;

  enum : unsigned { kStation = 1, kDevice = 2, kTime = 4, kEntries = 8, kExits = 16, kAll = 31 };
  unsigned seen = 0;
  for (auto result : object) {
    od::field field;
    if (std::move(result).get(field)) return DecodeStatus::kBadFieldCount;
    std::string_view key;
    if (field.unescaped_key().get(key)) return DecodeStatus::kBadFieldCount;
    DecodeStatus s = DecodeStatus::kOk;
    // A key that is none of ours is skipped by the iterator on the next step.
    if (key == fields_.station) {
      s = ReadStation(field.value(), &station_);
      seen |= kStation;
    } else if (key == fields_.device) {
      s = ReadDevice(field.value(), &device_);
      seen |= kDevice;
    } else if (key == fields_.time) {
      s = ReadTime(field.value(), &out->event_ms);
      seen |= kTime;
    } else if (key == fields_.entries) {
      s = ReadCounter(field.value(), &out->entries);
      seen |= kEntries;
    } else if (key == fields_.exits) {
      s = ReadCounter(field.value(), &out->exits);
      seen |= kExits;
    }
    if (s != DecodeStatus::kOk) return s;
  }
  // Anything after the closing brace makes the message malformed.
  const char* tail;
  if (doc.current_location().get(tail) == simdjson::SUCCESS) return DecodeStatus::kBadFieldCount;
  if (seen != kAll) return DecodeStatus::kMissingField;
  out->station = station_;
  out->device = device_;
  return DecodeStatus::kOk;
}

}  // namespace turnstiled::decode
