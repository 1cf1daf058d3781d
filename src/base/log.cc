#include "base/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <regex>

#include "base/civil_time.h"

namespace turnstiled::base {

namespace {

std::atomic<int> g_level{[] {
  LogLevel l = LogLevel::kInfo;
  if (const char* env = std::getenv("TURNSTILED_LOG_LEVEL")) ParseLogLevel(env, &l);
  return static_cast<int>(l);
}()};

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

void Log(LogLevel level, std::string_view component, std::string_view msg,
         std::initializer_list<LogField> fields) {
  if (static_cast<int>(level) < g_level.load(std::memory_order_relaxed)) return;
  const auto now = std::chrono::system_clock::now();
  const int64_t ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::string line = "ts=";
  // Always print milliseconds so log lines line up.
  AppendIsoUtc(ms - ms % 1000, &line);
  line.pop_back();
  char frac[8];
  std::snprintf(frac, sizeof frac, ".%03dZ", static_cast<int>(ms % 1000));
  line += frac;
  line += " level=";
  line += LevelName(level);
  line += " component=";
  AppendValue(component, &line);
  line += " msg=";
  AppendValue(msg, &line);
  for (const auto& [k, v] : fields) {
    line.push_back(' ');
    line.append(k);
    line.push_back('=');
    AppendValue(v, &line);
  }
  line.push_back('\n');
  // One write per line keeps lines from different threads whole.
  ssize_t rc = ::write(STDERR_FILENO, line.data(), line.size());
  (void)rc;
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
