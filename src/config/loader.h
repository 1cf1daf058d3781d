// LoadConfig: YAML text -> Config, collecting *every* error rather than stopping at the first.
//
// Each error names its YAML path (`window.size`, `sinks[1].type`) and the 1-based line of the
// offending node, so `turnstiled validate` can print them all at once. The error texts are
// part of the interface: tests compare them byte for byte.
//
// `${VAR}` and `${VAR:-default}` are expanded in scalar values before they are read. An
// undefined VAR without a default is an error. Environment lookup goes through `env`, so
// tests need not touch the process environment.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace turnstiled::config {

struct ConfigError {
  std::string path;  // "window.size"; "" for the document as a whole
  int line = 0;      // 1-based; 0 when unknown
  std::string message;

  // "<file>:<line>: <path>: <message>"
  std::string Format(std::string_view file) const;
};

using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

// The process environment.
EnvLookup ProcessEnv();

struct LoadResult {
  Config config;
  std::vector<ConfigError> errors;
  // The line where each YAML path was seen, for checks made after loading (validate's).
  std::map<std::string, int> lines;
  bool ok() const { return errors.empty(); }
  // The line of `path`, else of its nearest ancestor, else 1.
  int Line(const std::string& path) const;
};

// The line of `path` in `lines`, else of its nearest recorded ancestor, else 1.
int LineIn(const std::map<std::string, int>& lines, std::string path);

LoadResult LoadConfigText(std::string_view yaml, const EnvLookup& env);
LoadResult LoadConfigFile(const std::string& path, const EnvLookup& env);

// One line for `validate` on success, e.g.
// "ok: kafka source (1 topic, 2 threads), mta-csv cumulative, tumbling 4h windows, 2 sinks (file,
// postgres)"
std::string Summary(const Config& config);

}  // namespace turnstiled::config
