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

// True if every byte of s is printable ASCII (0x20 to 0x7E), as station names nearly always
// are: then s is shown as it is, one column a byte. No branch per byte, so the loop vectorizes.
bool PlainAscii(std::string_view s) {
  unsigned outside = 0;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    outside |= static_cast<unsigned char>(c - 0x20u) >= 0x5Fu;
  }
  return outside == 0;
}

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

// Bytes that AppendPrintable(s) appends.
size_t PrintableBytes(std::string_view s) {
  size_t bytes = 0;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    bytes += (c < 0x20 || c == 0x7F) ? 4 : 1;
  }
  return bytes;
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
  // The most bytes a station's text takes: more than its columns in UTF-8, and any bytes the
  // sink was handed are printed, whatever their columns.
  size_t station_bytes = 0;
  IsoText start_text, end_text;
  auto each_row = [&](auto&& fn) {
    for (const RowBatchPtr& batch : held_) {
      for (const window::WindowRow& r : *batch) fn(r);
    }
  };
  each_row([&](const window::WindowRow& r) {
    const bool plain = PlainAscii(r.station);
    width[0] = std::max(width[0], plain ? r.station.size() : PrintableWidth(r.station));
    station_bytes = std::max(station_bytes, plain ? r.station.size() : PrintableBytes(r.station));
    width[1] = std::max(width[1], start_text(r.window_start_ms).size());
    width[2] = std::max(width[2], end_text(r.window_end_ms).size());
    size_t len[3];
    numbers(r, len);
    for (int c = 0; c < 3; ++c) width[3 + c] = std::max(width[3 + c], len[c]);
  });
  // The table goes out through one buffer, kept from flush to flush and written out whenever
  // the next line might not fit, so a large batch needs no memory of its size. Lines are
  // written through a cursor, with no capacity check per cell. A line takes at most its
  // columns' widths, 7 separators and a newline, and a row's station cell at most its bytes
  // and its padding.
  size_t fixed = kShownColumns + 2;
  for (int c = 1; c < kShownColumns; ++c) fixed += width[c];
  const size_t line_max = fixed + width[0] + station_bytes;
  const size_t capacity = kWriteBytes + line_max;  // the banner fits in kWriteBytes
  if (buf_size_ < capacity) {
    buf_.reset(new char[capacity]);  // not zeroed: only what is written is read
    buf_size_ = capacity;
  }
  char* const buf = buf_.get();
  size_t used = 0;
  bool written = true;
  auto write_out = [&] {
    written = written && std::fwrite(buf, 1, used, out_) == used;
    used = 0;
  };
  auto put = [&](std::string_view v) {
    std::memcpy(buf + used, v.data(), v.size());
    used += v.size();
  };
  auto pad = [&](size_t n, char c) {
    std::memset(buf + used, c, n);
    used += n;
  };
  const std::string banner =
      "-------------------------------------------\nBatch: " + std::to_string(batch_) +
      "\n-------------------------------------------\n";
  // Makes room for one more line of the table.
  auto room = [&] {
    if (used + line_max > buf_size_) write_out();
  };
  auto rule = [&] {
    room();
    buf[used++] = '+';
    for (size_t w : width) {
      pad(w, '-');
      buf[used++] = '+';
    }
    buf[used++] = '\n';
  };
  put(banner);
  rule();
  room();
  buf[used++] = '|';
  for (int c = 0; c < kShownColumns; ++c) {
    put(window::kColumns[c]);
    pad(width[c] - std::strlen(window::kColumns[c]), ' ');
    buf[used++] = '|';
  }
  buf[used++] = '\n';
  rule();
  std::string escaped;  // a station that is not all printable ASCII; reused
  each_row([&](const window::WindowRow& r) {
    std::string_view station = r.station;
    size_t station_width = station.size();
    if (!PlainAscii(station)) {
      escaped.clear();
      AppendPrintable(station, &escaped);
      station = escaped;
      station_width = PrintableWidth(r.station);
    }
    room();
    buf[used++] = '|';
    put(station);
    pad(width[0] - station_width, ' ');
    buf[used++] = '|';
    const std::string_view start = start_text(r.window_start_ms);
    put(start);
    pad(width[1] - start.size(), ' ');
    buf[used++] = '|';
    const std::string_view end = end_text(r.window_end_ms);
    put(end);
    pad(width[2] - end.size(), ' ');
    buf[used++] = '|';
    size_t len[3];
    numbers(r, len);
    for (int c = 0; c < 3; ++c) {
      pad(width[3 + c] - len[c], ' ');
      put(std::string_view(num[c], len[c]));
      buf[used++] = '|';
    }
    buf[used++] = '\n';
  });
  rule();
  room();
  buf[used++] = '\n';
  write_out();
  if (!written || std::fflush(out_) != 0) {
    return base::Status::IoError(std::string("stdout: ") + std::strerror(errno));
  }
  held_.clear();
  ++batch_;
  return {};
}

}  // namespace turnstiled::sink
