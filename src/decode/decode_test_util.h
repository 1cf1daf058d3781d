// Helpers shared by the decoder tests: build a decoder from a FormatConfig, decode one message
// into owned strings, and write expected UTC times as calendar dates.
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/civil_time.h"
#include "config/config.h"
#include "decode/decoder.h"

namespace turnstiled::decode {

// doctest prints a failed CHECK(a == b) with the status names (found by argument lookup).
inline doctest::String toString(DecodeStatus s) { return Name(s); }

}  // namespace turnstiled::decode

namespace turnstiled::decode::testing {

inline std::unique_ptr<Decoder> Make(config::FormatType type, const std::string& zone = "UTC",
                                     int64_t max_message_bytes = 64 * 1024,
                                     config::JsonFields fields = {}) {
  config::FormatConfig format;
  format.type = type;
  format.timezone = zone;
  format.max_message_bytes = max_message_bytes;
  format.fields = std::move(fields);
  auto d = MakeDecoder(format);
  REQUIRE(d.ok());
  return std::move(d).value();
}

// A decoded record with its strings copied, so it outlives the decoder's next call.
struct Decoded {
  DecodeStatus status = DecodeStatus::kOk;
  std::string station;
  std::string device;
  int64_t event_ms = 0;
  int64_t entries = 0;
  int64_t exits = 0;
};

inline Decoded Decode(Decoder* d, std::string_view bytes) {
  Record r;
  Decoded out;
  out.status = d->Decode(bytes, &r);
  if (out.status == DecodeStatus::kOk) {
    out.station.assign(r.station);
    out.device.assign(r.device);
    out.event_ms = r.event_ms;
    out.entries = r.entries;
    out.exits = r.exits;
  }
  return out;
}

inline DecodeStatus Status(Decoder* d, std::string_view bytes) {
  Record r;
  return d->Decode(bytes, &r);
}

// Epoch milliseconds of a UTC calendar time.
constexpr int64_t Utc(int64_t y, unsigned mo, unsigned d, unsigned h = 0, unsigned mi = 0,
                      unsigned s = 0, int64_t ms = 0) {
  return (base::DaysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s) * 1000 + ms;
}

}  // namespace turnstiled::decode::testing
