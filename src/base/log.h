// Structured logging: one line per event, to stderr, in logfmt (the default) or JSON:
//
//   ts=2024-01-06T04:00:00.123Z level=info component=ingest msg="partition assigned" partition=3
//   {"ts":"2024-01-06T04:00:00.123Z","level":"info","component":"ingest","msg":"partition
//   assigned","partition":"3"}
//
// Safe to call from any thread (a line is written with one write(2)). Never call it per record:
// the hot path counts in metrics and logs per batch or per state change at most.
// Values are quoted when they contain spaces, quotes or '='. Secrets never reach this file:
// pass DSNs and passwords through Redact() first.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace turnstiled::base {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

using LogField = std::pair<std::string_view, std::string>;

void Log(LogLevel level, std::string_view component, std::string_view msg,
         std::initializer_list<LogField> fields = {});
void Log(LogLevel level, std::string_view component, std::string_view msg,
         const std::vector<LogField>& fields);

// A line of a library's own (librdkafka's log callback): the same text (numbers aside) from the
// same facility within 10 s is counted rather than printed (a broker that is down repeats itself
// every second), and the next one printed says how many were held back (`repeated=N`).
void LogLibraryLine(LogLevel level, std::string_view component, std::string_view facility,
                    std::string_view text);

enum class LogFormat { kLogfmt, kJson };
void SetLogFormat(LogFormat format);
bool ParseLogFormat(std::string_view name, LogFormat* out);

// Our level for a syslog level (0 emerg .. 7 debug), as librdkafka's log callback reports:
// 0-4 warn, 5-6 info, 7 debug.
LogLevel FromSyslogLevel(int level);

// Lines below this level are discarded. Default kInfo; TURNSTILED_LOG_LEVEL=debug|info|warn|error.
void SetLogLevel(LogLevel level);
bool ParseLogLevel(std::string_view name, LogLevel* out);

// Masks secrets in connection strings and property values: "password=..." in a libpq DSN, the
// password part of a URI (postgres://user:secret@host), and any key containing "password" or
// "secret" in "k=v" lists. Everything else is kept so the line stays useful.
std::string Redact(std::string_view text);

}  // namespace turnstiled::base
