#include "decode/decoder.h"

namespace turnstiled::decode {

const char* Name(DecodeStatus s) {
  switch (s) {
    case DecodeStatus::kOk:
      return "ok";
    case DecodeStatus::kHeader:
      return "header";
    case DecodeStatus::kEmpty:
      return "empty";
    case DecodeStatus::kOversized:
      return "oversized";
    case DecodeStatus::kNotUtf8:
      return "not_utf8";
    case DecodeStatus::kBadFieldCount:
      return "bad_field_count";
    case DecodeStatus::kMissingField:
      return "missing_field";
    case DecodeStatus::kBadTime:
      return "bad_time";
    case DecodeStatus::kBadNumber:
      return "bad_number";
    case DecodeStatus::kWrongType:
      return "wrong_type";
  }
  return "unknown";
}

}  // namespace turnstiled::decode
