#include "sink/stdout_sink.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "base/civil_time.h"

namespace turnstiled::sink {
namespace {

constexpr int kShownColumns = 6;  // station .. events; the extra columns stay in the files

std::string Printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7F) {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    } else {
      out.push_back(ch);
    }
  }
  return out;
}

// Width on a terminal, counting each UTF-8 code point once.
size_t DisplayWidth(std::string_view s) {
  return static_cast<size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

}  // namespace

base::Status StdoutSink::Write(std::span<const window::WindowRow> rows) {
  buffer_.insert(buffer_.end(), rows.begin(), rows.end());
  return {};
}

base::Status StdoutSink::Flush() {
  if (buffer_.empty()) return {};
  // One pass for the column widths, one to write: the cells are formatted straight into the
  // text, with no string per cell.
  char num[3][24];
  auto numbers = [&](const window::WindowRow& r, size_t* len) {
    const int64_t v[3] = {r.entries, r.exits, r.events};
    for (int c = 0; c < 3; ++c) {
      len[c] =
          static_cast<size_t>(std::to_chars(num[c], num[c] + sizeof num[c], v[c]).ptr - num[c]);
    }
  };
  std::array<size_t, kShownColumns> width{};
  for (int c = 0; c < kShownColumns; ++c) width[c] = std::strlen(window::kColumns[c]);
  std::string scratch;
  for (const window::WindowRow& r : buffer_) {
    width[0] = std::max(width[0], DisplayWidth(Printable(r.station)));
    scratch.clear();
    base::AppendIsoUtc(r.window_start_ms, &scratch);
    width[1] = std::max(width[1], scratch.size());
    scratch.clear();
    base::AppendIsoUtc(r.window_end_ms, &scratch);
    width[2] = std::max(width[2], scratch.size());
    size_t len[3];
    numbers(r, len);
    for (int c = 0; c < 3; ++c) width[3 + c] = std::max(width[3 + c], len[c]);
  }
  size_t line = 1;
  for (size_t w : width) line += w + 1;
  std::string text;
  text.reserve((buffer_.size() + 8) * (line + 1) + 128);
  text += "-------------------------------------------\nBatch: ";
  text += std::to_string(batch_);
  text += "\n-------------------------------------------\n";
  std::string rule = "+";
  for (size_t w : width) rule.append(w, '-').push_back('+');
  rule += '\n';
  text += rule;
  text += '|';
  for (int c = 0; c < kShownColumns; ++c) {
    text += window::kColumns[c];
    text.append(width[c] - std::strlen(window::kColumns[c]), ' ');
    text += '|';
  }
  text += '\n';
  text += rule;
  for (const window::WindowRow& r : buffer_) {
    text += '|';
    const std::string station = Printable(r.station);
    text += station;
    text.append(width[0] - DisplayWidth(station), ' ');
    text += '|';
    size_t at = text.size();
    base::AppendIsoUtc(r.window_start_ms, &text);
    text.append(width[1] - (text.size() - at), ' ');
    text += '|';
    at = text.size();
    base::AppendIsoUtc(r.window_end_ms, &text);
    text.append(width[2] - (text.size() - at), ' ');
    text += '|';
    size_t len[3];
    numbers(r, len);
    for (int c = 0; c < 3; ++c) {
      text.append(width[3 + c] - len[c], ' ');
      text.append(num[c], len[c]);
      text += '|';
    }
    text += '\n';
  }
  text += rule;
  text += '\n';
  if (std::fwrite(text.data(), 1, text.size(), out_) != text.size() || std::fflush(out_) != 0) {
    return base::Status::IoError(std::string("stdout: ") + std::strerror(errno));
  }
  buffer_.clear();
  ++batch_;
  return {};
}

}  // namespace turnstiled::sink
