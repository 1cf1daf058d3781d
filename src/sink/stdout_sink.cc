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

// Appends s with each control character as \xNN, so one row stays one line.
void AppendPrintable(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7F) {
      const char esc[4] = {'\\', 'x', kHex[c >> 4], kHex[c & 15]};
      out->append(esc, 4);
    } else {
      out->push_back(ch);
    }
  }
}

// Columns that AppendPrintable(s) takes on a terminal: a code point is one column (no
// continuation byte of UTF-8 counts), an escaped control character four.
size_t PrintableWidth(std::string_view s) {
  size_t width = 0;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    width += (c < 0x20 || c == 0x7F) ? 4 : (c & 0xC0) != 0x80;
  }
  return width;
}

// AppendIsoUtc(ms), remembered for the last ms: a batch's rows share few window bounds (every
// station's row of a window has the same two), so most rows copy the text instead of making it.
class IsoText {
 public:
  std::string_view operator()(int64_t ms) {
    if (ms != last_ms_ || text_.empty()) {
      text_.clear();
      base::AppendIsoUtc(ms, &text_);
      last_ms_ = ms;
    }
    return text_;
  }

 private:
  std::string text_;
  int64_t last_ms_ = 0;
};

}  // namespace

base::Status StdoutSink::Write(std::span<const window::WindowRow> rows) {
  if (!rows.empty()) {
    held_.push_back(
        std::make_shared<const std::vector<window::WindowRow>>(rows.begin(), rows.end()));
  }
  return {};
}

base::Status StdoutSink::WriteBatch(const RowBatchPtr& rows) {
  if (!rows->empty()) held_.push_back(rows);
  return {};
}

base::Status StdoutSink::Flush() {
  if (held_.empty()) return {};
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
  IsoText start_text, end_text;
  auto each_row = [&](auto&& fn) {
    for (const RowBatchPtr& batch : held_) {
      for (const window::WindowRow& r : *batch) fn(r);
    }
  };
  each_row([&](const window::WindowRow& r) {
    width[0] = std::max(width[0], PrintableWidth(r.station));
    width[1] = std::max(width[1], start_text(r.window_start_ms).size());
    width[2] = std::max(width[2], end_text(r.window_end_ms).size());
    size_t len[3];
    numbers(r, len);
    for (int c = 0; c < 3; ++c) width[3 + c] = std::max(width[3 + c], len[c]);
  });
  // The table goes out through one buffer, kept from flush to flush and written whenever it
  // holds kWriteBytes, so a large batch needs no memory of its size.
  std::string& text = text_;
  text.clear();
  bool written = true;
  auto write_out = [&] {
    written = written && std::fwrite(text.data(), 1, text.size(), out_) == text.size();
    text.clear();
  };
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
  each_row([&](const window::WindowRow& r) {
    text += '|';
    AppendPrintable(r.station, &text);
    text.append(width[0] - PrintableWidth(r.station), ' ');
    text += '|';
    const std::string_view start = start_text(r.window_start_ms);
    text += start;
    text.append(width[1] - start.size(), ' ');
    text += '|';
    const std::string_view end = end_text(r.window_end_ms);
    text += end;
    text.append(width[2] - end.size(), ' ');
    text += '|';
    size_t len[3];
    numbers(r, len);
    for (int c = 0; c < 3; ++c) {
      text.append(width[3 + c] - len[c], ' ');
      text.append(num[c], len[c]);
      text += '|';
    }
    text += '\n';
    if (text.size() >= kWriteBytes) write_out();
  });
  text += rule;
  text += '\n';
  write_out();
  if (!written || std::fflush(out_) != 0) {
    return base::Status::IoError(std::string("stdout: ") + std::strerror(errno));
  }
  held_.clear();
  ++batch_;
  return {};
}

}  // namespace turnstiled::sink
