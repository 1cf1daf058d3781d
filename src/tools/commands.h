// The subcommands of the `turnstiled` binary, other than `run` and `demo` (src/app).
//
// Each takes the arguments after its own name (argv[0] is the command name) and returns the
// process exit code. Each parses its own options with CLI11, so `turnstiled CMD --help` works.
#pragma once

namespace turnstiled::tools {

int ValidateMain(int argc, char** argv);  // validate.cc
int BrokerMain(int argc, char** argv);    // broker.cc
int ProduceMain(int argc, char** argv);   // produce.cc
int VersionMain(int argc, char** argv);   // version.cc

}  // namespace turnstiled::tools
