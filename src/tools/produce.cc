// Placeholder until `turnstiled produce` lands.
#include <cstdio>

#include "tools/commands.h"

namespace turnstiled::tools {

int ProduceMain(int, char**) {
  std::fprintf(stderr, "turnstiled produce: not built yet\n");
  return 2;
}

}  // namespace turnstiled::tools
