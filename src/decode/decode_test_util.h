// Helpers shared by the decoder tests: build a decoder from a FormatConfig, decode one message
// into owned strings, and write expected UTC times as calendar dates.
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

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

// DecodeLines() of `chunk` must say, line by line, what Decode() of each line says. Returns the
// number of non-empty lines compared.
inline size_t CheckDecodeLinesMatches(Decoder* chunked, Decoder* single, std::string_view chunk) {
  struct Collect final : LineHandler {
    struct Line {
      std::string text;
      int64_t number;
      Decoded decoded;
    };
    std::vector<Line> lines;
    void OnLine(std::string_view line, int64_t number, DecodeStatus status,
                const Record& r) override {
      Decoded d;
      d.status = status;
      if (status == DecodeStatus::kOk) {
        d.station.assign(r.station);
        d.device.assign(r.device);
        d.event_ms = r.event_ms;
        d.entries = r.entries;
        d.exits = r.exits;
      }
      lines.push_back({std::string(line), number, std::move(d)});
    }
  } got;
  const int64_t count = chunked->DecodeLines(chunk, &got);
  size_t i = 0;
  int64_t number = 0;
  std::string_view rest = chunk;
  while (!rest.empty()) {
    const size_t nl = rest.find('\n');
    const std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    ++number;
    if (line.empty()) continue;
    REQUIRE(i < got.lines.size());
    const auto& g = got.lines[i++];
    const Decoded want = Decode(single, line);
    CHECK(g.text == line);
    CHECK(g.number == number);
    CHECK(g.decoded.status == want.status);
    CHECK(g.decoded.station == want.station);
    CHECK(g.decoded.device == want.device);
    CHECK(g.decoded.event_ms == want.event_ms);
    CHECK(g.decoded.entries == want.entries);
    CHECK(g.decoded.exits == want.exits);
  }
  CHECK(i == got.lines.size());
  CHECK(count == number);
  return i;
}

// Epoch milliseconds of a UTC calendar time.
constexpr int64_t Utc(int64_t y, unsigned mo, unsigned d, unsigned h = 0, unsigned mi = 0,
                      unsigned s = 0, int64_t ms = 0) {
  return (base::DaysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s) * 1000 + ms;
}

}  // namespace turnstiled::decode::testing
