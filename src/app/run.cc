#include <cstdio>

#include "app/commands.h"

namespace turnstiled::app {

int RunMain(int, char**) {
  std::fprintf(stderr, "turnstiled run: not built yet\n");
  return 2;
}

}  // namespace turnstiled::app
