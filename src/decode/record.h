// Record: one decoded turnstile reading, as it travels from a decoder to a window shard.
#pragma once

#include <cstdint>
#include <string_view>

namespace turnstiled::decode {

// Views point into the message bytes or into the decoder's own scratch buffer; they stay valid
// until the decoder's next Decode() call. Whoever keeps a record longer copies the strings.
struct Record {
  std::string_view station;  // the STATION column, as it stands
  std::string_view device;   // unique per turnstile, e.g. "A002,R051,02-00-00"
  int64_t event_ms = 0;      // event time, UTC epoch milliseconds
  int64_t entries = 0;       // register reading (cumulative) or count (delta)
  int64_t exits = 0;
};

}  // namespace turnstiled::decode
