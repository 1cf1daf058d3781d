// JsonDecoder: one JSON object per message (format `json`, SPEC §3).
//
// Key names come from format.fields. The time is an RFC 3339 string or an epoch number in
// seconds or milliseconds; counters are integers. Parsing uses simdjson On-Demand with the
// error-code API only, so nothing throws. See docs/FORMATS.md for every rule.
//
// Thread-compatible: one decoder per ingest thread. It owns a parser, a padded copy of the
// message and the station/device strings of the last record; all are reused, so once they
// have grown to the largest message seen, Decode() allocates nothing. Views in a decoded
// Record point into this decoder until the next Decode().
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "base/time_zone.h"
#include "config/config.h"
#include "decode/decoder.h"

namespace turnstiled::decode {

class JsonDecoder final : public Decoder {
 public:
  JsonDecoder(base::LocalTimeConverter zone, int64_t max_message_bytes, config::JsonFields fields);

  DecodeStatus Decode(std::string_view bytes, Record* out) override;

 private:
  DecodeStatus ReadTime(simdjson::ondemand::value value, int64_t* event_ms);

  // Constant after construction.
  const size_t max_message_bytes_;
  const config::JsonFields fields_;
  // Owned by the calling thread.
  base::LocalTimeConverter zone_;
  simdjson::ondemand::parser parser_;
  std::string padded_;   // the message, followed by SIMDJSON_PADDING spare bytes
  std::string station_;  // the last record's station
  std::string device_;   // the last record's device (a rendered integer if it was one)
};

}  // namespace turnstiled::decode
