// Decoder: bytes of one message (or one line of a file) -> Record.
//
// A decoder never throws and never allocates per record. It returns a DecodeStatus from a
// closed set; that set is also the `reason` label of turnstiled_decode_errors_total, so adding
// a value here adds a metric series. kHeader is not an error: header lines are skipped
// wherever they appear.
//
// Thread-compatible: each ingest thread owns its decoder(s).
#pragma once

#include <memory>
#include <string_view>

#include "base/status.h"
#include "config/config.h"
#include "decode/record.h"

namespace turnstiled::decode {

enum class DecodeStatus : uint8_t {
  kOk = 0,
  kHeader,         // a header row; skip it, count nothing
  kEmpty,          // no bytes, or only whitespace / header lines
  kOversized,      // longer than format.max_message_bytes
  kNotUtf8,        // bytes that are not valid UTF-8
  kBadFieldCount,  // wrong number of fields (csv) or not an object (json)
  kMissingField,   // a required field is absent or empty
  kBadTime,        // a date or time that does not parse or does not exist
  kBadNumber,      // a counter that is not an integer, or is out of range
  kWrongType,      // a JSON field of the wrong type
};
inline constexpr int kDecodeStatusCount = 10;

// "ok", "header", "empty", "oversized", "not_utf8", "bad_field_count", "missing_field",
// "bad_time", "bad_number", "wrong_type"
const char* Name(DecodeStatus s);

// Receives the lines of a chunk, in order: each non-empty line with its 1-based number in the
// chunk and what Decode() would say of it. `record` is valid only during the call, and only
// when `status` is kOk.
class LineHandler {
 public:
  virtual void OnLine(std::string_view line, int64_t line_in_chunk, DecodeStatus status,
                      const Record& record) = 0;

 protected:
  ~LineHandler() = default;
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  // REQUIRES: `out` is not null. On kOk, *out holds the record; otherwise it is unspecified.
  virtual DecodeStatus Decode(std::string_view bytes, Record* out) = 0;
  // Decodes every line of `chunk` (whole lines; the last may lack its '\n'), as Decode() of
  // each line would. Empty lines are skipped but counted. Returns the number of lines. The
  // default splits the lines and calls Decode(); a line-oriented format may do it in one pass.
  virtual int64_t DecodeLines(std::string_view chunk, LineHandler* handler);
};

// The one table of formats. Fails only on a bad timezone name.
base::Result<std::unique_ptr<Decoder>> MakeDecoder(const config::FormatConfig& format);

}  // namespace turnstiled::decode
