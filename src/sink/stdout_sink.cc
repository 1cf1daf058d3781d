#include "sink/stdout_sink.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "base/civil_time.h"

namespace turnstiled::sink {
namespace {

constexpr int kShownColumns = 6;  // station .. events; the extra columns stay in the files

std::string Printable(std::string_view s) {
  std::string out;
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
  using Cells = std::array<std::string, kShownColumns>;
  std::vector<Cells> cells;
  cells.reserve(buffer_.size() + 1);
  Cells header;
  for (int c = 0; c < kShownColumns; ++c) header[c] = window::kColumns[c];
  cells.push_back(header);
  for (const window::WindowRow& r : buffer_) {
    cells.push_back({Printable(r.station), base::FormatIsoUtc(r.window_start_ms),
                     base::FormatIsoUtc(r.window_end_ms), std::to_string(r.entries),
                     std::to_string(r.exits), std::to_string(r.events)});
  }
  std::array<size_t, kShownColumns> width{};
  for (const Cells& row : cells) {
    for (int c = 0; c < kShownColumns; ++c) width[c] = std::max(width[c], DisplayWidth(row[c]));
  }
  std::string text = "-------------------------------------------\nBatch: ";
  text += std::to_string(batch_);
  text += "\n-------------------------------------------\n";
  std::string rule = "+";
  for (size_t w : width) rule += std::string(w, '-') + "+";
  rule += '\n';
  text += rule;
  for (size_t i = 0; i < cells.size(); ++i) {
    text += '|';
    for (int c = 0; c < kShownColumns; ++c) {
      const size_t pad = width[c] - DisplayWidth(cells[i][c]);
      const bool right = i > 0 && c >= 3;
      if (right) text.append(pad, ' ');
      text += cells[i][c];
      if (!right) text.append(pad, ' ');
      text += '|';
    }
    text += '\n';
    if (i == 0) text += rule;
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
