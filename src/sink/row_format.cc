#include "sink/row_format.h"

#include <charconv>
#include <cstdint>
#include <cstdio>

#include "base/civil_time.h"

namespace turnstiled::sink {
namespace {

constexpr char kHex[] = "0123456789abcdef";

void AppendInt(int64_t v, std::string* out) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, end);
}

// Length of the valid UTF-8 sequence at s[i], or 0 when the byte there does not start one.
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return 1;
  size_t n;
  uint32_t cp;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2, cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3, cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4, cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    const auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  if (n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) return 0;  // overlong, surrogate
  if (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) return 0;
  return n;
}

void AppendUnicodeEscape(unsigned char c, std::string* out) {
  out->append("\\u00");
  out->push_back(kHex[c >> 4]);
  out->push_back(kHex[c & 15]);
}

// The text of the last window bound formatted on this thread: a flush writes each window's rows
// together, so its start and end are formatted once for all of them.
struct BoundText {
  int64_t ms = INT64_MIN;
  std::string text;
  void Append(int64_t epoch_ms, std::string* out) {
    if (epoch_ms != ms || text.empty()) {
      text.clear();
      base::AppendIsoUtc(epoch_ms, &text);
      ms = epoch_ms;
    }
    out->append(text);
  }
};

template <typename AppendString>
void AppendRow(const window::WindowRow& row, char sep, bool json, AppendString append_string,
               std::string* out) {
  auto key = [&](int column) {
    if (json) {
      out->push_back(column == 0 ? '{' : ',');
      out->push_back('"');
      out->append(window::kColumns[column]);
      out->append("\":");
    } else if (column > 0) {
      out->push_back(sep);
    }
  };
  auto time = [&](int64_t ms, BoundText* cache = nullptr) {
    if (json) out->push_back('"');
    cache != nullptr ? cache->Append(ms, out) : base::AppendIsoUtc(ms, out);
    if (json) out->push_back('"');
  };
  thread_local BoundText start_text;
  thread_local BoundText end_text;
  key(0), append_string(row.station, out);
  key(1), time(row.window_start_ms, &start_text);
  key(2), time(row.window_end_ms, &end_text);
  key(3), AppendInt(row.entries, out);
  key(4), AppendInt(row.exits, out);
  key(5), AppendInt(row.events, out);
  key(6), out->append(row.final ? "true" : "false");
  key(7), time(row.first_event_ms);
  key(8), time(row.last_event_ms);
  if (json) out->push_back('}');
  out->push_back('\n');
}

}  // namespace

bool IsValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = Utf8SequenceLength(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

void AppendJsonString(std::string_view s, std::string* out) {
  out->push_back('"');
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t n = Utf8SequenceLength(s, i);
      if (n == 0) {
        AppendUnicodeEscape(c, out);
        ++i;
      } else {
        out->append(s.substr(i, n));
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < 0x20) {
          AppendUnicodeEscape(c, out);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out->push_back('"');
}

void AppendCsvField(std::string_view s, std::string* out) {
  if (s.find_first_of(",\"\r\n") == std::string_view::npos) {
    out->append(s);
    return;
  }
  out->push_back('"');
  for (char c : s) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}

void AppendCsvHeader(std::string* out) {
  for (int i = 0; i < window::kColumnCount; ++i) {
    if (i > 0) out->push_back(',');
    out->append(window::kColumns[i]);
  }
  out->push_back('\n');
}

void AppendCsvRow(const window::WindowRow& row, std::string* out) {
  AppendRow(row, ',', false, AppendCsvField, out);
}

void AppendJsonRow(const window::WindowRow& row, std::string* out) {
  AppendRow(row, ',', true, AppendJsonString, out);
}

void AppendCompactUtc(int64_t epoch_ms, std::string* out) {
  const int64_t days = base::FloorDiv(epoch_ms, 86400000);
  const int64_t ms_of_day = epoch_ms - days * 86400000;
  const base::CivilDate d = base::CivilFromDays(days);
  char buf[48];
  const int64_t secs = ms_of_day / 1000;
  int n = std::snprintf(buf, sizeof buf, "%04lld%02u%02uT%02lld%02lld%02lld",
                        static_cast<long long>(d.year), d.month, d.day,
                        static_cast<long long>(secs / 3600), static_cast<long long>(secs / 60 % 60),
                        static_cast<long long>(secs % 60));
  out->append(buf, static_cast<size_t>(n));
  if (ms_of_day % 1000 != 0) {
    n = std::snprintf(buf, sizeof buf, ".%03lld", static_cast<long long>(ms_of_day % 1000));
    out->append(buf, static_cast<size_t>(n));
  }
  out->push_back('Z');
}

void AppendBase64(std::string_view bytes, std::string* out) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    out->push_back(kAlphabet[v >> 18]);
    out->push_back(kAlphabet[(v >> 12) & 63]);
    out->push_back(kAlphabet[(v >> 6) & 63]);
    out->push_back(kAlphabet[v & 63]);
  }
  const size_t rest = bytes.size() - i;
  if (rest == 0) return;
  uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
  if (rest == 2) v |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
  out->push_back(kAlphabet[v >> 18]);
  out->push_back(kAlphabet[(v >> 12) & 63]);
  out->push_back(rest == 2 ? kAlphabet[(v >> 6) & 63] : '=');
  out->push_back('=');
}

}  // namespace turnstiled::sink
