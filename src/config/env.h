// Environment references in config values: `${VAR}` and `${VAR:-default}`.
//
// Expansion runs on the text of every scalar value before it is read, so a reference may
// stand for a whole value (`dsn: ${PG_DSN}`) or part of one (`path: ${OUT:-out}/lake`), and a
// value may hold several. As in the shell, `${VAR:-default}` takes the default when VAR is
// unset *or empty*. `$${` is written out as a literal `${`; any other `$` is kept as it is.
// Pure function; thread-safe if `env` is.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/loader.h"

namespace turnstiled::config {

// Returns `text` with every reference replaced. Each reference that cannot be expanded
// (undefined, malformed, unterminated) appends one message to *errors and expands to "".
std::string ExpandEnv(std::string_view text, const EnvLookup& env,
                      std::vector<std::string>* errors);

}  // namespace turnstiled::config
