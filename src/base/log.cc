#include "base/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <regex>
#include <unordered_map>

#include "base/civil_time.h"

namespace turnstiled::base {

namespace {

std::atomic<int> g_level{[] {
  LogLevel l = LogLevel::kInfo;
  if (const char* env = std::getenv("TURNSTILED_LOG_LEVEL")) ParseLogLevel(env, &l);
  return static_cast<int>(l);
}()};

std::atomic<int> g_format{static_cast<int>(LogFormat::kLogfmt)};

void AppendJsonString(std::string_view v, std::string* out) {
  out->push_back('"');
  for (char c : v) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (c == '\n') {
      out->append("\\n");
    } else if (c == '\t') {
      out->append("\\t");
    } else if (u < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\u%04x", u);
      out->append(esc);
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

const char* LevelName(LogLevel l) {
  switch (l) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

void AppendValue(std::string_view v, std::string* out) {
  bool quote = v.empty();
  for (char c : v) {
    if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20) quote = true;
  }
  if (!quote) {
    out->append(v);
    return;
  }
  out->push_back('"');
  for (char c : v) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (c == '\n') {
      out->append("\\n");
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out->push_back('?');
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

}  // namespace

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }

bool ParseLogLevel(std::string_view name, LogLevel* out) {
  if (name == "debug")
    *out = LogLevel::kDebug;
  else if (name == "info")
    *out = LogLevel::kInfo;
  else if (name == "warn" || name == "warning")
    *out = LogLevel::kWarn;
  else if (name == "error")
    *out = LogLevel::kError;
  else
    return false;
  return true;
}

namespace {

void Write(LogLevel level, std::string_view component, std::string_view msg, const LogField* fields,
           size_t n) {
  if (static_cast<int>(level) < g_level.load(std::memory_order_relaxed)) return;
  const auto now = std::chrono::system_clock::now();
  const int64_t ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  // Always print milliseconds so log lines line up.
  std::string ts;
  AppendIsoUtc(ms - ms % 1000, &ts);
  ts.pop_back();
  char frac[8];
  std::snprintf(frac, sizeof frac, ".%03dZ", static_cast<int>(ms % 1000));
  ts += frac;
  std::string line;
  if (g_format.load(std::memory_order_relaxed) == static_cast<int>(LogFormat::kJson)) {
    line += "{\"ts\":\"";
    line += ts;
    line += "\",\"level\":\"";
    line += LevelName(level);
    line += "\",\"component\":";
    AppendJsonString(component, &line);
    line += ",\"msg\":";
    AppendJsonString(msg, &line);
    for (size_t i = 0; i < n; ++i) {
      line.push_back(',');
      AppendJsonString(fields[i].first, &line);
      line.push_back(':');
      AppendJsonString(fields[i].second, &line);
    }
    line += "}\n";
  } else {
    line += "ts=";
    line += ts;
    line += " level=";
    line += LevelName(level);
    line += " component=";
    AppendValue(component, &line);
    line += " msg=";
    AppendValue(msg, &line);
    for (size_t i = 0; i < n; ++i) {
      line.push_back(' ');
      line.append(fields[i].first);
      line.push_back('=');
      AppendValue(fields[i].second, &line);
    }
    line.push_back('\n');
  }
  // One write per line keeps lines from different threads whole.
  ssize_t rc = ::write(STDERR_FILENO, line.data(), line.size());
  (void)rc;
}

}  // namespace

void Log(LogLevel level, std::string_view component, std::string_view msg,
         std::initializer_list<LogField> fields) {
  Write(level, component, msg, fields.begin(), fields.size());
}

void Log(LogLevel level, std::string_view component, std::string_view msg,
         const std::vector<LogField>& fields) {
  Write(level, component, msg, fields.data(), fields.size());
}

void LogLibraryLine(LogLevel level, std::string_view component, std::string_view facility,
                    std::string_view text) {
  if (static_cast<int>(level) < g_level.load(std::memory_order_relaxed)) return;
  struct Seen {
    std::chrono::steady_clock::time_point last;
    uint64_t held = 0;
  };
  static std::mutex mu;
  static std::unordered_map<std::string, Seen> seen;
  const auto now = std::chrono::steady_clock::now();
  // Lines that differ only in their numbers ("after 12ms", "3 identical error(s)") repeat.
  std::string key(facility);
  key.push_back('\0');
  for (char c : text) {
    if (c >= '0' && c <= '9') {
      if (key.back() != '#') key.push_back('#');
    } else {
      key.push_back(c);
    }
  }
  uint64_t held = 0;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (seen.size() > 4096) seen.clear();  // bounded: a flood of distinct lines is rare
    auto [it, fresh] = seen.try_emplace(std::move(key));
    if (!fresh && now - it->second.last < std::chrono::seconds(10)) {
      ++it->second.held;
      return;
    }
    held = it->second.held;
    it->second = Seen{now, 0};
  }
  if (held == 0) {
    Log(level, component, "librdkafka",
        {{"facility", std::string(facility)}, {"text", std::string(text)}});
  } else {
    Log(level, component, "librdkafka",
        {{"facility", std::string(facility)},
         {"text", std::string(text)},
         {"repeated", std::to_string(held)}});
  }
}

void SetLogFormat(LogFormat format) { g_format.store(static_cast<int>(format)); }

bool ParseLogFormat(std::string_view name, LogFormat* out) {
  if (name == "logfmt") {
    *out = LogFormat::kLogfmt;
  } else if (name == "json") {
    *out = LogFormat::kJson;
  } else {
    return false;
  }
  return true;
}

std::string Redact(std::string_view text) {
  static const std::regex kUriPassword(R"(([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s]*@)");
  static const std::regex kKeyValue(
      R"(((?:password|passwd|secret|sasl\.password|ssl\.key\.password)\s*[=:]\s*)('[^']*'|"[^"]*"|[^\s,;&]+))",
      std::regex::icase);
  std::string s(text);
  s = std::regex_replace(s, kUriPassword, "$1***@");
  s = std::regex_replace(s, kKeyValue, "$1***");
  return s;
}

LogLevel FromSyslogLevel(int level) {
  if (level <= 4) return LogLevel::kWarn;
  if (level <= 6) return LogLevel::kInfo;
  return LogLevel::kDebug;
}

}  // namespace turnstiled::base
