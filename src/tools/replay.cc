#include "tools/replay.h"

#include <algorithm>
#include <cstring>
#include <memory>

#include "base/civil_time.h"
#include "base/input_file.h"

namespace turnstiled::tools {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

bool ParseDigits(std::string_view s, int64_t* out) {
  if (s.empty()) return false;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

}  // namespace

bool ParseMtaDateTime(std::string_view date, std::string_view time, int64_t* local_seconds) {
  int64_t month = 0, day = 0, year = 0;
  if (date.size() == 10 && date[2] == '/' && date[5] == '/') {
    if (!ParseDigits(date.substr(0, 2), &month) || !ParseDigits(date.substr(3, 2), &day) ||
        !ParseDigits(date.substr(6, 4), &year)) {
      return false;
    }
  } else if (date.size() == 8 && date[2] == '-' && date[5] == '-') {
    if (!ParseDigits(date.substr(0, 2), &month) || !ParseDigits(date.substr(3, 2), &day) ||
        !ParseDigits(date.substr(6, 2), &year)) {
      return false;
    }
    year += 2000;
  } else {
    return false;
  }
  if (!base::IsValidDate(year, static_cast<unsigned>(month), static_cast<unsigned>(day))) {
    return false;
  }
  int64_t h = 0, m = 0, s = 0;
  if (time.size() != 8 || time[2] != ':' || time[5] != ':' || !ParseDigits(time.substr(0, 2), &h) ||
      !ParseDigits(time.substr(3, 2), &m) || !ParseDigits(time.substr(6, 2), &s) || h > 23 ||
      m > 59 || s > 59) {
    return false;
  }
  *local_seconds =
      base::DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400 +
      h * 3600 + m * 60 + s;
  return true;
}

base::Result<ReplaySet> ReplaySet::Load(const std::vector<std::string>& paths) {
  ReplaySet set;
  set.texts_.reserve(paths.size());
  for (const std::string& path : paths) {
    auto text = base::ReadWholeFile(path);
    if (!text.ok()) return text.status();
    set.texts_.push_back(std::make_unique<std::string>(std::move(text).value()));
    std::string_view rest = *set.texts_.back();
    int64_t line_no = 0;
    while (!rest.empty()) {
      ++line_no;
      const size_t nl = rest.find('\n');
      std::string_view line = rest.substr(0, nl);
      rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (Trim(line).empty()) continue;
      std::string_view fields[9];
      size_t nfields = 0;
      size_t start = 0;
      while (nfields < 9) {
        const size_t comma = line.find(',', start);
        fields[nfields++] =
            line.substr(start, comma == std::string_view::npos ? comma : comma - start);
        if (comma == std::string_view::npos) break;
        start = comma + 1;
      }
      const std::string_view first = Trim(fields[0]);
      if (first == "C/A" || first == "CA") {
        ++set.headers_skipped_;
        continue;
      }
      ReplayRow row;
      if (nfields < 8 || !ParseMtaDateTime(Trim(fields[6]), Trim(fields[7]), &row.local_seconds)) {
        return base::Status::InvalidArgument(path + ":" + std::to_string(line_no) +
                                             ": not an MTA row (C/A,UNIT,SCP,STATION,LINENAME,"
                                             "DIVISION,DATE,TIME,...): " +
                                             std::string(line.substr(0, 200)));
      }
      row.line = line;
      row.station = fields[3];
      set.rows_.push_back(row);
    }
  }
  std::stable_sort(set.rows_.begin(), set.rows_.end(), [](const ReplayRow& a, const ReplayRow& b) {
    return a.local_seconds < b.local_seconds;
  });
  return set;
}

}  // namespace turnstiled::tools
