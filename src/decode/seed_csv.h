// SeedCsvDecoder: the seed project's sample message (format `seed-csv`, SPEC §3).
//
//   timestamp,station,turnstile_id,device_id,entry,exit,entry_datetime
//
// The seed producer sends the header line and one data row in every message; header lines
// are skipped wherever they appear. Values may be quoted with ' or "; a quoted value ends at
// the quote that is followed by a comma or the end of the line, so an apostrophe inside a
// '-quoted station name (B'WAY-LAFAYETTE) needs no escape, and a doubled one is undone. The
// event time is entry_datetime; the `timestamp` column (the producer's send time) is ignored.
// The device is turnstile_id + "/" + device_id, built in a reused buffer. See docs/FORMATS.md.
//
// Thread-compatible: one decoder per ingest thread. Views in a decoded Record point into the
// message bytes or into this decoder until the next Decode().
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/time_zone.h"
#include "decode/decoder.h"

namespace turnstiled::decode {

class SeedCsvDecoder final : public Decoder {
 public:
  SeedCsvDecoder(base::LocalTimeConverter zone, int64_t max_message_bytes);

  DecodeStatus Decode(std::string_view bytes, Record* out) override;

 private:
  DecodeStatus DecodeLine(std::string_view line, Record* out);

  // Constant after construction.
  const size_t max_message_bytes_;
  // Owned by the calling thread.
  base::LocalTimeConverter zone_;
  std::string device_;   // "turnstile_id/device_id" of the last record; reused
  std::string station_;  // the last station, when it held a doubled quote to undo; reused
};

}  // namespace turnstiled::decode
