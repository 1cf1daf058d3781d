// Helpers shared by the sink tests: a temporary directory, a small RFC 4180 reader and a
// directory walk. Test-only; not part of the library.
#pragma once

#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "window/row.h"

namespace turnstiled::sink::testing {

// A fresh directory under /tmp, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/turnstiled-sink-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Parses RFC 4180 text into records. Sets *ok to false on a malformed quote or when the text
// does not end with a line break.
inline std::vector<std::vector<std::string>> ParseCsv(std::string_view text, bool* ok) {
  std::vector<std::vector<std::string>> records;
  std::vector<std::string> record;
  std::string field;
  *ok = text.empty() || text.back() == '\n';
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '"') {
      ++i;
      for (;;) {
        if (i >= text.size()) {
          *ok = false;
          return records;
        }
        if (text[i] == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            field.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        field.push_back(text[i++]);
      }
      if (i < text.size() && text[i] != ',' && text[i] != '\n') *ok = false;
    }
    while (i < text.size() && text[i] != ',' && text[i] != '\n') field.push_back(text[i++]);
    record.push_back(std::move(field));
    field.clear();
    if (i < text.size() && text[i] == '\n') {
      records.push_back(std::move(record));
      record.clear();
    }
    ++i;
  }
  if (!record.empty()) records.push_back(std::move(record));
  return records;
}

// Regular files under root, recursively, sorted.
// The regular files under root, sorted: those a reader of the lake sees, without dot files (the
// sink's temp files and journal) unless `hidden`.
inline std::vector<std::filesystem::path> FilesUnder(const std::string& root, bool hidden = false) {
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
    if (!hidden && e.path().filename().string().starts_with(".")) continue;
    if (e.is_regular_file()) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

inline window::WindowRow MakeRow(std::string station, int64_t start_ms, int64_t end_ms,
                                 int64_t entries = 1) {
  window::WindowRow r;
  r.station = std::move(station);
  r.window_start_ms = start_ms;
  r.window_end_ms = end_ms;
  r.entries = entries;
  r.exits = entries * 2;
  r.events = 3;
  r.final = true;
  r.first_event_ms = start_ms;
  r.last_event_ms = end_ms - 1000;
  return r;
}

}  // namespace turnstiled::sink::testing
