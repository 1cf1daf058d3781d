// `turnstiled run -c FILE [--available-now] [--drain]`: load the config, build the pipeline,
// run it until the input ends or a signal arrives.
//
// Signals are blocked in every thread and taken by one thread with sigwait(), so nothing
// runs inside a signal handler: SIGTERM/SIGINT ask the pipeline to stop (SPEC §7), SIGHUP is
// acknowledged (logs go to stderr, which the service manager owns).
#include <signal.h>
#include <systemd/sd-daemon.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <thread>

#include "app/commands.h"
#include "base/log.h"
#include "config/loader.h"
#include "ingest/pipeline.h"

namespace turnstiled::app {

using base::Log;
using base::LogLevel;

int RunPipeline(const config::Config& cfg, const ingest::RunOptions& options) {
  // Block the stop signals before any thread exists, so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  sigaddset(&signals, SIGUSR1);  // used only to wake the signal thread at exit
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto pipeline = ingest::Pipeline::Create(cfg, options);
  if (!pipeline.ok()) {
    Log(LogLevel::kError, "run", "cannot start",
        {{"error", base::Redact(pipeline.status().ToString())}});
    std::fprintf(stderr, "turnstiled run: %s\n",
                 base::Redact(pipeline.status().ToString()).c_str());
    return 1;
  }
  ingest::Pipeline* p = pipeline->get();
  std::thread signal_thread([p, signals] {
    for (;;) {
      int sig = 0;
      if (sigwait(&signals, &sig) != 0) continue;
      if (sig == SIGUSR1) return;
      if (sig == SIGHUP) {
        Log(LogLevel::kInfo, "run", "SIGHUP: logs go to stderr; nothing to reopen");
        continue;
      }
      Log(LogLevel::kInfo, "run", "stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
      sd_notify(0, "STOPPING=1");
      p->RequestStop();
    }
  });
  sd_notify(0, "READY=1");
  const base::Status s = p->Run();
  pthread_kill(signal_thread.native_handle(), SIGUSR1);
  signal_thread.join();
  pipeline->reset();
  if (!s.ok()) {
    Log(LogLevel::kError, "run", "finished with an error", {{"error", base::Redact(s.ToString())}});
    return 1;
  }
  return 0;
}

int RunMain(int argc, char** argv) {
  CLI::App app("Run the daemon: consume, aggregate into event-time windows, write to sinks.",
               "run");
  std::string path;
  ingest::RunOptions options;
  app.add_option("-c,--config", path, "YAML config file")->required();
  app.add_flag("--available-now", options.available_now,
               "consume what the topics hold at start, emit every window, commit, exit 0");
  app.add_flag("--drain", options.drain, "on SIGTERM, emit open windows instead of resuming them");
  CLI11_PARSE(app, argc, argv);

  const config::LoadResult loaded = config::LoadConfigFile(path, config::ProcessEnv());
  if (!loaded.ok()) {
    for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.Format(path).c_str());
    std::fprintf(stderr, "%zu error(s) in %s\n", loaded.errors.size(), path.c_str());
    return 1;
  }
  Log(LogLevel::kInfo, "run", "starting",
      {{"config", path}, {"summary", config::Summary(loaded.config)}});
  return RunPipeline(loaded.config, options);
}

}  // namespace turnstiled::app
