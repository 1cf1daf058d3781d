// Structured logging: one logfmt line per event, to stderr.
//
//   ts=2024-01-06T04:00:00.123Z level=info component=ingest msg="partition assigned" partition=3
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

namespace turnstiled::base {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

using LogField = std::pair<std::string_view, std::string>;

void Log(LogLevel level, std::string_view component, std::string_view msg,
         std::initializer_list<LogField> fields = {});

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
