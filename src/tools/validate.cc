// `turnstiled validate -c FILE`: load a config the way `run` does and report every error.
//
// Errors go to stderr, one per line ("FILE:LINE: PATH: MESSAGE"), then a count; the exit code
// is 1. A valid config prints one summary line on stdout and exits 0. Usage errors exit 2.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "config/loader.h"
#include "tools/commands.h"

namespace turnstiled::tools {

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

  const config::LoadResult result = config::LoadConfigFile(file, config::ProcessEnv());
  if (result.ok()) {
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
