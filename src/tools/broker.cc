// Placeholder until `turnstiled broker` lands.
#include <cstdio>

#include "tools/commands.h"

namespace turnstiled::tools {

int BrokerMain(int, char**) {
  std::fprintf(stderr, "turnstiled broker: not built yet\n");
  return 2;
}

}  // namespace turnstiled::tools
