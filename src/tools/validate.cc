// Placeholder until `turnstiled validate` lands.
#include <cstdio>

#include "tools/commands.h"

namespace turnstiled::tools {

int ValidateMain(int, char**) {
  std::fprintf(stderr, "turnstiled validate: not built yet\n");
  return 2;
}

}  // namespace turnstiled::tools
