// `turnstiled run` and `turnstiled demo`.
#pragma once

namespace turnstiled::app {

int RunMain(int argc, char** argv);   // run.cc
int DemoMain(int argc, char** argv);  // demo.cc

}  // namespace turnstiled::app
