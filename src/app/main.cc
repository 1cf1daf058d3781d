// turnstiled: one binary, a table of subcommands (like ninja's kTools), "did you mean" included.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "app/commands.h"
#include "tools/commands.h"

namespace {

struct Command {
  const char* name;
  const char* help;
  int (*main)(int argc, char** argv);
};

constexpr Command kCommands[] = {
    {"run", "run the daemon: consume, aggregate into windows, write to sinks",
     turnstiled::app::RunMain},
    {"validate", "check a config file and print every error", turnstiled::tools::ValidateMain},
    {"produce", "publish generated or real MTA data to Kafka", turnstiled::tools::ProduceMain},
    {"broker", "start the embedded development broker (Kafka protocol, loopback)",
     turnstiled::tools::BrokerMain},
    {"demo", "run broker, producer and daemon together and show the results",
     turnstiled::app::DemoMain},
    {"tap", "print the windows of a running daemon as they update and close",
     turnstiled::app::TapMain},
    {"version", "print the version, build info and library versions",
     turnstiled::tools::VersionMain},
};

size_t EditDistance(std::string_view a, std::string_view b) {
  std::string prev(b.size() + 1, 0);
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

void Usage(FILE* out) {
  std::fprintf(out, "usage: turnstiled <command> [options]\n\ncommands:\n");
  for (const Command& c : kCommands) std::fprintf(out, "  %-10s %s\n", c.name, c.help);
  std::fprintf(out, "\n'turnstiled <command> --help' describes a command's options.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    Usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string_view name = argv[1];
  if (name == "--version") return turnstiled::tools::VersionMain(argc - 1, argv + 1);
  for (const Command& c : kCommands) {
    if (name == c.name) {
      const int code = c.main(argc - 1, argv + 1);
      // CLI11 reports its parse errors with codes from 100 up: every one is a usage error.
      return code >= 100 && code < 128 ? turnstiled::app::kExitUsage : code;
    }
  }
  const Command* best = nullptr;
  size_t best_distance = 3;
  for (const Command& c : kCommands) {
    const size_t d = EditDistance(name, c.name);
    if (d < best_distance) {
      best_distance = d;
      best = &c;
    }
  }
  std::fprintf(stderr, "turnstiled: unknown command '%s'", argv[1]);
  if (best != nullptr) std::fprintf(stderr, ", did you mean '%s'?", best->name);
  std::fprintf(stderr, "\n\n");
  Usage(stderr);
  return 2;
}
