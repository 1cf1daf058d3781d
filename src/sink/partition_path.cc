#include "sink/partition_path.h"

#include <cstdint>

#include "base/civil_time.h"

namespace turnstiled::sink {
namespace {

constexpr char kHex[] = "0123456789ABCDEF";
constexpr size_t kHashSuffixBytes = 17;  // "~" + 16 hex digits

bool IsKept(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == ' ' || c == '.';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;  // lower case is never produced, so it is not accepted either
}

uint64_t Fnv1a64(std::string_view s) {
  uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

}  // namespace

std::string EscapePartitionValue(std::string_view value) {
  if (value.empty()) return "%";
  std::string out;
  out.reserve(value.size() + 8);
  // Positions where the output may be cut without splitting an escape.
  size_t last_cut = 0;
  const size_t cut_limit = kMaxEscapedBytes - kHashSuffixBytes;
  for (size_t i = 0; i < value.size(); ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (IsKept(c) && !(i == 0 && c == '.')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
    if (out.size() <= cut_limit) last_cut = out.size();
  }
  if (out.size() <= kMaxEscapedBytes) return out;
  out.resize(last_cut);
  const uint64_t h = Fnv1a64(value);
  out.push_back('~');
  for (int shift = 60; shift >= 0; shift -= 4) out.push_back(kHex[(h >> shift) & 15]);
  return out;
}

base::Result<std::string> UnescapePartitionValue(std::string_view escaped) {
  if (escaped == "%") return std::string();
  if (escaped.empty()) return base::Status::InvalidArgument("empty partition value");
  std::string out;
  out.reserve(escaped.size());
  for (size_t i = 0; i < escaped.size(); ++i) {
    const auto c = static_cast<unsigned char>(escaped[i]);
    if (c == '%') {
      const bool room = i + 2 < escaped.size();
      const int hi = room ? HexValue(escaped[i + 1]) : -1;
      const int lo = room ? HexValue(escaped[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        return base::Status::InvalidArgument("bad escape in partition value '" +
                                             std::string(escaped) + "'");
      }
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '~') {
      return base::Status::InvalidArgument("partition value '" + std::string(escaped) +
                                           "' was cut to fit a file name; read the rows instead");
    } else if (IsKept(c) && !(i == 0 && c == '.')) {
      out.push_back(static_cast<char>(c));
    } else {
      return base::Status::InvalidArgument("unexpected byte in partition value '" +
                                           std::string(escaped) + "'");
    }
  }
  return out;
}

std::string PartitionDir(const std::vector<std::string>& fields, std::string_view station,
                         int64_t window_start_ms) {
  std::string dir;
  for (const std::string& f : fields) {
    if (!dir.empty()) dir += '/';
    if (f == "date") {
      dir += "date=";
      dir += base::FormatDateUtc(window_start_ms);
    } else if (f == "hour") {
      const int64_t hour = base::FloorMod(window_start_ms, 86400000) / 3600000;
      dir += "hour=";
      dir += static_cast<char>('0' + hour / 10);
      dir += static_cast<char>('0' + hour % 10);
    } else {
      dir += "station=";
      dir += EscapePartitionValue(station);
    }
  }
  return dir;
}

}  // namespace turnstiled::sink
