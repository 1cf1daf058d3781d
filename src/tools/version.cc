// `turnstiled version`: what this binary is and what it was built with.
#include <librdkafka/rdkafka.h>
#include <simdjson.h>
#include <yaml-cpp/yaml.h>
#include <zstd.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "tools/commands.h"

#define TURNSTILED_STR2(x) #x
#define TURNSTILED_STR(x) TURNSTILED_STR2(x)

#ifndef TURNSTILED_VERSION
#define TURNSTILED_VERSION "0.0.0"
#endif

namespace turnstiled::tools {

int VersionMain(int argc, char** argv) {
  CLI::App app("Print the version, the build info and the library versions.", "version");
  CLI11_PARSE(app, argc, argv);
  std::printf("turnstiled %s\n", TURNSTILED_VERSION);
  std::printf("build: %s, %s, C++%ld, %s %s\n", TURNSTILED_BUILD_TYPE, TURNSTILED_COMPILER,
              __cplusplus / 100 % 100 + 0L, __DATE__, __TIME__);
  std::printf("librdkafka %s\n", rd_kafka_version_str());
  std::printf("simdjson %s (%s)\n", TURNSTILED_STR(SIMDJSON_VERSION),
              simdjson::get_active_implementation()->name().c_str());
  std::printf("zstd %s\n", ZSTD_versionString());
  std::printf("CLI11 %s\n", CLI11_VERSION);
  return 0;
}

}  // namespace turnstiled::tools
