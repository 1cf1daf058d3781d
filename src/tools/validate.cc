// `turnstiled validate -c FILE`: load a config the way `run` does and report every error.
//
// Errors go to stderr, one per line ("FILE:LINE: PATH: MESSAGE"), then a count; the exit code
// is 1. Beyond what `run` refuses at load, validate checks what it can see from here: a file
// source's paths (and globs) must each match a file. A valid config prints one summary line on
// stdout and exits 0 (with warnings on stderr for output paths under a system folder). Usage
// errors exit 2.
#include <glob.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "config/loader.h"
#include "tools/commands.h"

namespace turnstiled::tools {

namespace {
// Output under a system folder is almost always a slip (a relative path written absolute, a
// copy of /etc as the lake), and a daemon running as root would write there: warn.
std::vector<std::string> SystemPathWarnings(const config::Config& c) {
  static constexpr const char* kSystem[] = {"/etc", "/usr", "/boot", "/proc", "/sys"};
  std::vector<std::string> out;
  auto check = [&](const std::string& key, const std::string& path) {
    for (const char* dir : kSystem) {
      const std::string d = dir;
      if (path == d || path.rfind(d + "/", 0) == 0) {
        out.push_back(key + ": '" + path + "' is under the system folder " + d +
                      "; write output to a data folder (e.g. /var/lib/turnstiled)");
      }
    }
  };
  for (size_t i = 0; i < c.sinks.size(); ++i) {
    if (c.sinks[i].type == config::SinkType::kFile) {
      check("sinks[" + std::to_string(i) + "].path", c.sinks[i].path);
    }
  }
  if (c.dead_letter.enabled && c.dead_letter.type == config::SinkType::kFile) {
    check("dead_letter.path", c.dead_letter.path);
  }
  check("state.dir", c.state.dir);
  return out;
}

// A file source's paths that match no file: the run would refuse to start.
std::vector<config::ConfigError> UnmatchedInputs(const config::LoadResult& result) {
  std::vector<config::ConfigError> out;
  const config::Config& c = result.config;
  if (c.source.type != config::SourceType::kFile) return out;
  for (size_t i = 0; i < c.source.file.paths.size(); ++i) {
    const std::string& p = c.source.file.paths[i];
    glob_t g{};
    const int rc = ::glob(p.c_str(), 0, nullptr, &g);
    globfree(&g);
    if (rc == 0) continue;
    const char* where = !p.empty() && p.front() != '/' ? " (relative to the working folder)" : "";
    const std::string path = "source.file.paths[" + std::to_string(i) + "]";
    out.push_back({path, result.Line(path),
                   "'" + p + "' matches no file" + where + "; check the path and the glob"});
  }
  return out;
}
}  // namespace

int ValidateMain(int argc, char** argv) {
  CLI::App app(
      "Check a config file and print every error at once, each with its YAML path and line.\n"
      "${VAR} and ${VAR:-default} are expanded from the environment, as `run` does.",
      "validate");
  std::string file;
  app.add_option("-c,--config", file, "the config file (YAML)")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }

  config::LoadResult result = config::LoadConfigFile(file, config::ProcessEnv());
  if (result.ok()) result.errors = UnmatchedInputs(result);
  if (result.ok()) {
    for (const std::string& w : SystemPathWarnings(result.config)) {
      std::fprintf(stderr, "%s: warning: %s\n", file.c_str(), w.c_str());
    }
    std::printf("%s\n", config::Summary(result.config).c_str());
    return 0;
  }
  for (const config::ConfigError& e : result.errors) {
    std::fprintf(stderr, "%s\n", e.Format(file).c_str());
  }
  const size_t n = result.errors.size();
  std::fprintf(stderr, "%zu error%s in %s\n", n, n == 1 ? "" : "s", file.c_str());
  return 1;
}

}  // namespace turnstiled::tools
