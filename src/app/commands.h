// `turnstiled run`, `turnstiled demo` and `turnstiled tap`.
#pragma once

namespace turnstiled::app {

// Exit codes of every command (docs/OPERATIONS.md). 78 is sysexits' EX_CONFIG, so a unit can
// say RestartPreventExitStatus=78: a bad config is not fixed by restarting.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // a runtime failure
inline constexpr int kExitUsage = 2;    // a command-line error
inline constexpr int kExitConfig = 78;  // the config cannot work

int RunMain(int argc, char** argv);   // run.cc
int DemoMain(int argc, char** argv);  // demo.cc
int TapMain(int argc, char** argv);   // tap.cc

}  // namespace turnstiled::app
