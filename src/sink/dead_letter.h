// DeadLetter: where dropped records go, with why they were dropped (SPEC §5, §8).
//
// One JSON object per line:
//   {"reason":"late","topic":"turnstile-stream","partition":3,"offset":1234,
//    "event_time":"2024-01-06T04:00:00Z","raw":"A002,R051,...","raw_base64":false}
// `raw` is the message bytes as text when they are valid UTF-8, otherwise base64 with
// raw_base64 true. `event_time` is present when the record decoded. A record longer than
// max_record_bytes is cut, and the line adds "raw_truncated":true,"raw_bytes":<full length>.
//
// Thread-safe: ingest threads and shards both report here. Calls are per dropped record, which
// is the exception path; the common path never touches it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "config/config.h"

namespace turnstiled::sink {

struct DeadLetterEntry {
  std::string_view reason;  // a decode status name or a drop reason ("late", "future", ...)
  std::string_view topic;   // "" for a file source (then `file` is the path)
  int32_t partition = -1;
  int64_t offset = -1;           // Kafka offset, or line number for a file source
  int64_t event_ms = INT64_MIN;  // INT64_MIN when unknown
  std::string_view raw;
};

class DeadLetter {
 public:
  virtual ~DeadLetter() = default;
  virtual void Write(const DeadLetterEntry& entry) = 0;
  // Makes everything written so far durable.
  virtual base::Status Flush() = 0;
  // Reopens the output by its name (SIGHUP, after logrotate moved the file). A no-op where
  // there is no file.
  virtual base::Status Reopen() { return {}; }
};

// Returns a DeadLetter that discards everything when `config.enabled` is false.
base::Result<std::unique_ptr<DeadLetter>> MakeDeadLetter(const config::DeadLetterConfig& config);

}  // namespace turnstiled::sink
