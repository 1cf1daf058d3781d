// `turnstiled run -c FILE [--available-now] [--drain]`: load the config, build the pipeline,
// run it until the input ends or a signal arrives.
//
// Signals are blocked in every thread and taken by one thread with sigwait(), so nothing
// runs inside a signal handler. That thread exists from before the pipeline is built, so a
// SIGTERM or SIGINT during start-up (waiting for a broker) is honoured too (SPEC §7). SIGHUP
// reopens the dead-letter file, for logrotate.
//
// systemd (Type=notify): READY=1 once the pipeline can work (partitions assigned, sinks up),
// WATCHDOG=1 every quarter of WatchdogSec while every source and shard thread loops, and
// STOPPING=1 when a stop is asked for.
//
// Logs: --log-level and --log-format override the config's log section; a progress line every
// log.progress_interval.
//
// Exit codes: 0 done; 1 runtime failure; 2 usage error; 78 config error (EX_CONFIG).
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "app/commands.h"
#include "base/log.h"
#include "base/thread_name.h"
#include "config/loader.h"
#include "ingest/pipeline.h"

namespace turnstiled::app {

using base::Log;
using base::LogLevel;

namespace {

// Shared by the signal thread and the main thread.
struct Control {
  std::atomic<bool> stop{false};
  std::mutex mu;
  ingest::Pipeline* pipeline = nullptr;  // guarded by mu; set once built
};

// sd_notify() blocks while the supervisor's socket queue is full (net.unix.max_dgram_qlen, often
// 10 messages); a daemon must never wait on its supervisor, least of all while stopping. This
// sends without blocking: a message that does not fit is dropped, and the next WATCHDOG=1 comes
// a quarter period later.
void Notify(const char* state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || (path[0] != '/' && path[0] != '@')) return;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const size_t len = std::strlen(path);
  if (len >= sizeof addr.sun_path) return;
  std::memcpy(addr.sun_path, path, len);
  if (path[0] == '@') addr.sun_path[0] = '\0';  // the abstract namespace
  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return;
  (void)sendto(fd, state, std::strlen(state), MSG_DONTWAIT | MSG_NOSIGNAL,
               reinterpret_cast<const sockaddr*>(&addr),
               static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len));
  close(fd);
}

// Tells systemd the pipeline is ready, once, and keeps its watchdog fed while the pipeline's
// threads loop. Runs until `done`.
class Lifecycle {
 public:
  Lifecycle(ingest::Pipeline* p, std::chrono::milliseconds progress_every)
      : p_(p), progress_every_(progress_every) {
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) watchdog_ = std::chrono::microseconds(usec);
    thread_ = std::thread([this] { Loop(); });
  }
  ~Lifecycle() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void Loop() {
    base::NameThisThread("lifecycle");
    const auto period =
        watchdog_.count() > 0
            ? std::min<std::chrono::microseconds>(watchdog_ / 4, std::chrono::milliseconds(250))
            : std::chrono::microseconds(std::chrono::milliseconds(250));
    bool ready = false;
    std::string stuck_logged;
    auto next_progress = std::chrono::steady_clock::now() + progress_every_;
    double last_records = 0;
    auto last_at = std::chrono::steady_clock::now();
    std::unique_lock<std::mutex> lock(mu_);
    while (!done_) {
      lock.unlock();
      const auto now = std::chrono::steady_clock::now();
      if (progress_every_.count() > 0 && now >= next_progress) {
        const auto fields = p_->ProgressFields();
        const double records = fields.empty() ? 0 : std::stod(fields[0].second);
        const double secs = std::chrono::duration<double>(now - last_at).count();
        const std::string rate = std::to_string(
            static_cast<uint64_t>(secs > 0 ? std::max(0.0, records - last_records) / secs : 0));
        std::vector<base::LogField> line;
        line.reserve(fields.size() + 1);
        for (const auto& f : fields) {
          line.push_back(f);
          if (line.size() == 1) line.emplace_back("records_per_second", rate);
        }
        Log(LogLevel::kInfo, "run", "progress", line);
        last_records = records;
        last_at = now;
        next_progress = now + progress_every_;
      }
      if (!ready && p_->NotReadyReason().empty()) {
        ready = true;
        Notify("READY=1");
        Log(LogLevel::kInfo, "run", "ready");
      }
      const std::string stuck = p_->StuckReason();
      if (stuck.empty()) {
        if (watchdog_.count() > 0) Notify("WATCHDOG=1");
      } else if (stuck != stuck_logged) {
        Log(LogLevel::kError, "run", "pipeline stuck; the watchdog is no longer fed",
            {{"reason", stuck}});
      }
      stuck_logged = stuck;
      lock.lock();
      cv_.wait_for(lock, period, [this] { return done_; });
    }
  }

  ingest::Pipeline* const p_;
  const std::chrono::milliseconds progress_every_;
  std::chrono::microseconds watchdog_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace

int RunPipeline(const config::Config& cfg, ingest::RunOptions options) {
  // Block the signals before any thread exists, so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  sigaddset(&signals, SIGUSR1);  // used only to wake the signal thread at exit
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  Control control;
  std::thread signal_thread([&control, signals] {
    base::NameThisThread("signals");
    for (;;) {
      int sig = 0;
      if (sigwait(&signals, &sig) != 0) continue;
      if (sig == SIGUSR1) return;
      std::lock_guard<std::mutex> lock(control.mu);
      if (sig == SIGHUP) {
        const base::Status s =
            control.pipeline != nullptr ? control.pipeline->ReopenFiles() : base::Status();
        Log(s.ok() ? LogLevel::kInfo : LogLevel::kError, "run",
            s.ok() ? "SIGHUP: dead-letter file reopened" : "SIGHUP: reopening failed",
            {{"error", s.ok() ? "" : s.ToString()}});
        continue;
      }
      Log(LogLevel::kInfo, "run", "stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
      control.stop.store(true);
      if (control.pipeline != nullptr) control.pipeline->RequestStop();
      Notify("STOPPING=1");
    }
  });
  auto stop_signal_thread = [&] {
    pthread_kill(signal_thread.native_handle(), SIGUSR1);
    signal_thread.join();
  };

  options.cancel = &control.stop;
  auto pipeline = ingest::Pipeline::Create(cfg, options);
  if (!pipeline.ok()) {
    stop_signal_thread();
    if (control.stop.load()) {
      Log(LogLevel::kInfo, "run", "stopped during start-up");
      return kExitOk;
    }
    const base::Status& s = pipeline.status();
    Log(LogLevel::kError, "run", "cannot start", {{"error", base::Redact(s.ToString())}});
    std::fprintf(stderr, "turnstiled run: %s\n", base::Redact(s.ToString()).c_str());
    // A setting the libraries refuse is the config's fault: restarting will not help.
    return s.code() == base::Code::kInvalidArgument ? kExitConfig : kExitFailure;
  }
  ingest::Pipeline* p = pipeline->get();
  {
    std::lock_guard<std::mutex> lock(control.mu);
    control.pipeline = p;
    if (control.stop.load()) p->RequestStop();
  }
  base::Status s;
  {
    Lifecycle lifecycle(p, std::chrono::milliseconds(cfg.log.progress_interval));
    s = p->Run();
  }
  {
    std::lock_guard<std::mutex> lock(control.mu);
    control.pipeline = nullptr;
  }
  stop_signal_thread();
  pipeline->reset();
  if (!s.ok()) {
    Log(LogLevel::kError, "run", "finished with an error", {{"error", base::Redact(s.ToString())}});
    return kExitFailure;
  }
  return kExitOk;
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
  std::string log_level;
  std::string log_format;
  app.add_option("--log-level", log_level, "debug, info, warn or error (overrides log.level)")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  app.add_option("--log-format", log_format, "logfmt or json (overrides log.format)")
      ->check(CLI::IsMember({"logfmt", "json"}));
  CLI11_PARSE(app, argc, argv);

  const config::LoadResult loaded = config::LoadConfigFile(path, config::ProcessEnv());
  if (!loaded.ok()) {
    for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.Format(path).c_str());
    std::fprintf(stderr, "%zu error(s) in %s\n", loaded.errors.size(), path.c_str());
    return kExitConfig;
  }
  // The command line wins over the config; both were checked already.
  base::LogLevel level = base::LogLevel::kInfo;
  base::ParseLogLevel(log_level.empty() ? loaded.config.log.level : log_level, &level);
  base::SetLogLevel(level);
  base::LogFormat format = base::LogFormat::kLogfmt;
  base::ParseLogFormat(log_format.empty() ? loaded.config.log.format : log_format, &format);
  base::SetLogFormat(format);
  Log(LogLevel::kInfo, "run", "starting",
      {{"config", path}, {"summary", config::Summary(loaded.config)}});
  return RunPipeline(loaded.config, options);
}

}  // namespace turnstiled::app
