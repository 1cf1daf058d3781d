// `turnstiled demo`: the whole system on this machine, in one command.
//
// Starts the embedded broker, publishes a real MTA week (when ../shared/data/mta is there)
// or generated data, runs the pipeline over the topic with --available-now into a lake under
// the output folder, and prints where everything is and the busiest stations and windows.
// The broker and the producer are this same binary, started as child processes.
//
// With --live the producer replays paced (a week in about a minute) while the pipeline
// streams, and the live view (docs/LIVE.md) shows the windows filling and closing until
// Ctrl-C.
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "app/commands.h"
#include "base/input_file.h"
#include "config/loader.h"
#include "ingest/pipeline.h"

namespace turnstiled::app {

int RunPipeline(const config::Config& cfg, ingest::RunOptions options);  // run.cc

namespace {

namespace fs = std::filesystem;

std::string SelfExe() {
  std::error_code ec;
  fs::path p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("turnstiled") : p.string();
}

// `quiet`: the child's stdout goes to /dev/null (the broker prints its address there).
pid_t Spawn(const std::vector<std::string>& args, bool quiet = false) {
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    // The demo stops its children itself, in order (pipeline, producer, broker): a Ctrl-C in
    // the terminal reaches only the demo, and a demo that dies takes its children with it.
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, nullptr);  // the demo blocks them; the child must not
    if (quiet) {
      const int devnull = open("/dev/null", O_WRONLY);
      if (devnull >= 0) dup2(devnull, STDOUT_FILENO);
    }
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

int Wait(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Splits one CSV line (RFC 4180, as the file sink writes it).
std::vector<std::string> SplitCsv(std::string_view line) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        out.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        out.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.emplace_back();
    } else {
      out.back() += c;
    }
  }
  return out;
}

// Checks that `listen` ("host:port", IPv4 or [IPv6]) can be bound now, and makes port 0 a
// real free port, so that the URL the demo prints is the one it serves. "" on success, else
// why not.
std::string ClaimListen(std::string* listen) {
  const size_t colon = listen->rfind(':');
  if (colon == std::string::npos) return "expected HOST:PORT";
  std::string host = listen->substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string port = listen->substr(colon + 1);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0 || found == nullptr) {
    return "not an IP address and port";
  }
  const int fd = socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  std::string error;
  if (fd < 0 || bind(fd, found->ai_addr, found->ai_addrlen) != 0) {
    error = std::strerror(errno);
  } else {
    sockaddr_storage bound{};
    socklen_t len = sizeof bound;
    getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
    const uint16_t p = bound.ss_family == AF_INET6
                           ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                           : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    *listen = listen->substr(0, colon + 1) + std::to_string(p);
  }
  if (fd >= 0) close(fd);
  freeaddrinfo(found);
  return error;
}

std::string FindMtaDir(const std::string& given) {
  if (!given.empty()) return given;
  if (const char* env = std::getenv("TURNSTILED_MTA_DIR")) return env;
  for (const char* candidate : {"../shared/data/mta", "../../shared/data/mta", "shared/data/mta"}) {
    if (fs::exists(fs::path(candidate) / "turnstile_240106.txt.zst")) return candidate;
  }
  return "";
}

}  // namespace

int DemoMain(int argc, char** argv) {
  CLI::App app("Run broker, producer and daemon together on this machine and show the results.",
               "demo");
  std::string out = "demo-out";
  std::string mta_dir;
  std::string week = "turnstile_240106.txt.zst";
  bool generate = false;
  int64_t count = 300000;
  std::string metrics = "127.0.0.1:9464";
  bool live = false;
  int64_t minutes = 1;
  app.add_option("--out", out, "folder for the lake, dead letter and state")->capture_default_str();
  app.add_option("--mta-dir", mta_dir, "folder of real MTA weeks (default: ../shared/data/mta)");
  app.add_option("--week", week, "which week to replay")->capture_default_str();
  app.add_flag("--generate", generate, "use the generator even when real weeks are available");
  app.add_option("--count", count, "records to generate")->capture_default_str();
  app.add_option("--metrics", metrics, "where to serve /metrics while the demo runs")
      ->capture_default_str();
  app.add_flag("--live", live,
               "replay paced and stream, serving the live view at http://METRICS/live until "
               "Ctrl-C");
  app.add_option("--minutes", minutes, "--live: how long the replay of the week takes")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{24 * 60}));
  CLI11_PARSE(app, argc, argv);

  // Ctrl-C from here on is taken by the pipeline's signal thread (run.cc), once it runs: held
  // until then, it stops the demo in order instead of killing it half-started.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  if (const std::string why = ClaimListen(&metrics); !why.empty()) {
    std::fprintf(stderr, "demo: cannot serve --metrics %s: %s (pick another with --metrics)\n",
                 metrics.c_str(), why.c_str());
    return kExitUsage;
  }

  const std::string self = SelfExe();
  fs::create_directories(out);
  const std::string abs_out = fs::absolute(out).string();
  // Every demo starts a new broker with an empty topic: what an earlier demo left in this
  // folder (its lake, its offsets in state/) belongs to another topic and would only mislead.
  for (const char* stale : {"lake", "state", "dead-letter"}) {
    std::error_code ec;
    fs::remove_all(fs::path(abs_out) / stale, ec);
  }
  const std::string addr_file = abs_out + "/broker.addr";
  fs::remove(addr_file);

  std::printf("turnstiled demo: output in %s\n\n", abs_out.c_str());
  std::printf("1. starting the embedded broker (6 partitions)\n");
  std::fflush(stdout);
  const pid_t broker = Spawn({self, "broker", "--partitions", "6", "--topic", "turnstile-stream",
                              "--bootstrap-file", addr_file},
                             /*quiet=*/true);
  std::string bootstrap;
  for (int i = 0; i < 300 && bootstrap.empty(); ++i) {
    std::ifstream in(addr_file);
    std::getline(in, bootstrap);
    if (bootstrap.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    int status = 0;
    if (bootstrap.empty() && waitpid(broker, &status, WNOHANG) == broker) {
      std::fprintf(stderr, "demo: the broker exited early\n");
      return 1;
    }
  }
  if (bootstrap.empty()) {
    std::fprintf(stderr, "demo: the broker did not start\n");
    kill(broker, SIGTERM);
    Wait(broker);
    return 1;
  }
  std::printf("   broker at %s\n", bootstrap.c_str());

  const std::string dir = generate ? "" : FindMtaDir(mta_dir);
  std::vector<std::string> produce = {self,      "produce", "-b",
                                      bootstrap, "--topic", "turnstile-stream"};
  if (!dir.empty() && fs::exists(fs::path(dir) / week)) {
    std::printf("2. replaying the real MTA week %s/%s%s\n", dir.c_str(), week.c_str(),
                live ? (" in about " + std::to_string(minutes) + " min").c_str() : "");
    produce.insert(produce.end(), {"--replay", (fs::path(dir) / week).string()});
    // A week is 10,080 minutes.
    if (live) produce.insert(produce.end(), {"--speedup", std::to_string(10080 / minutes)});
  } else {
    std::printf("2. %s: generating %lld readings (seed 1)\n",
                generate ? "--generate" : "no real MTA data found", static_cast<long long>(count));
    produce.insert(produce.end(), {"--generate", "--count", std::to_string(count), "--seed", "1"});
    if (live) {
      // At least 1 a second: a rate of 0 would mean "as fast as possible".
      produce.insert(produce.end(),
                     {"--rate", std::to_string(std::max<int64_t>(1, count / (60 * minutes)))});
    }
  }
  std::fflush(stdout);
  pid_t producer = -1;
  const int produced = live ? 0 : Wait(Spawn(produce));
  if (live) producer = Spawn(produce);
  if (produced != 0) {
    std::fprintf(stderr, "demo: the producer failed (exit %d)\n", produced);
    kill(broker, SIGTERM);
    Wait(broker);
    return 1;
  }

  const std::string config_path = abs_out + "/demo.yaml";
  {
    std::ofstream cfg(config_path);
    cfg << "# Written by `turnstiled demo`; run it again with\n"
        << "#   turnstiled run -c " << config_path << " --available-now\n"
        << "source:\n  type: kafka\n  kafka:\n    bootstrap_servers: \"" << bootstrap << "\"\n"
        << "    topics: [turnstile-stream]\n    group_id: turnstiled-demo\n    consumer_threads: "
           "2\n"
        // The embedded broker rebalances in about session.timeout.ms: keep it short here.
        << "    properties: {session.timeout.ms: 6000, heartbeat.interval.ms: 500}\n"
        << "format:\n  type: mta-csv\n  timezone: America/New_York\n  counters: cumulative\n"
        << "window:\n  type: tumbling\n  size: 4h\n  allowed_lateness: 1h\n"
        << "sinks:\n  - {name: lake, type: file, path: \"" << abs_out
        << "/lake\", format: csv, compression: zstd}\n"
        << "dead_letter: {type: file, path: \"" << abs_out << "/dead-letter\"}\n"
        << "metrics: {listen: \"" << metrics << "\"}\n"
        << "state: {dir: \"" << abs_out << "/state\"}\n";
  }
  if (live) {
    std::printf("3. streaming: turnstiled run -c %s\n\n", config_path.c_str());
    std::printf(
        "   live view:  http://%s/live\n   or:         turnstiled tap --url http://%s/events\n"
        "   Ctrl-C stops the demo.\n\n",
        metrics.c_str(), metrics.c_str());
  } else {
    std::printf("3. running the pipeline: turnstiled run -c %s --available-now\n",
                config_path.c_str());
  }
  std::fflush(stdout);
  const config::LoadResult loaded = config::LoadConfigFile(config_path, config::ProcessEnv());
  int rc = 1;
  if (!loaded.ok()) {
    for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.Format(config_path).c_str());
  } else {
    ingest::RunOptions options;
    options.available_now = !live;
    rc = RunPipeline(loaded.config, options);
  }
  if (producer > 0) {
    kill(producer, SIGTERM);
    Wait(producer);
  }
  kill(broker, SIGTERM);
  Wait(broker);
  if (rc != 0) {
    std::fprintf(stderr, "demo: the pipeline failed\n");
    return rc;
  }

  // Read the lake back and show what is in it.
  std::map<std::string, int64_t> by_station;
  std::vector<std::pair<int64_t, std::string>> windows;
  size_t files = 0;
  size_t rows = 0;
  for (const auto& e : fs::recursive_directory_iterator(abs_out + "/lake")) {
    if (!e.is_regular_file() || e.path().filename().string().front() == '.') continue;
    ++files;
    auto text = base::ReadWholeFile(e.path().string());
    if (!text.ok()) continue;
    std::string_view rest = *text;
    bool header = true;
    while (!rest.empty()) {
      const size_t nl = rest.find('\n');
      const std::string_view line = rest.substr(0, nl);
      rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
      if (header) {
        header = false;
        continue;
      }
      const auto f = SplitCsv(line);
      if (f.size() < 6) continue;
      ++rows;
      const int64_t entries = std::stoll(f[3]);
      by_station[f[0]] += entries;
      windows.emplace_back(entries, f[0] + "  " + f[1] + " .. " + f[2]);
    }
  }
  std::vector<std::pair<int64_t, std::string>> stations;
  for (const auto& [name, entries] : by_station) stations.emplace_back(entries, name);
  std::sort(stations.rbegin(), stations.rend());
  std::sort(windows.rbegin(), windows.rend());
  std::printf("\n4. results: %zu rows in %zu files under %s/lake\n", rows, files, abs_out.c_str());
  std::printf("\n   busiest stations (entries over the whole run)\n");
  for (size_t i = 0; i < std::min<size_t>(10, stations.size()); ++i) {
    std::printf("   %10lld  %s\n", static_cast<long long>(stations[i].first),
                stations[i].second.c_str());
  }
  std::printf("\n   busiest 4-hour windows (entries)\n");
  for (size_t i = 0; i < std::min<size_t>(10, windows.size()); ++i) {
    std::printf("   %10lld  %s\n", static_cast<long long>(windows[i].first),
                windows[i].second.c_str());
  }
  std::printf("\n   dead letter: %s/dead-letter   config: %s\n", abs_out.c_str(),
              config_path.c_str());
  std::printf("   look at a file:  zstd -dc $(find %s/lake -name '*.zst' | head -1)\n",
              abs_out.c_str());
  return 0;
}

}  // namespace turnstiled::app
