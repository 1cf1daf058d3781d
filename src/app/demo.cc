#include <cstdio>

#include "app/commands.h"

namespace turnstiled::app {

int DemoMain(int, char**) {
  std::fprintf(stderr, "turnstiled demo: not built yet\n");
  return 2;
}

}  // namespace turnstiled::app
