// `turnstiled broker`: the embedded development broker, librdkafka's mock cluster on loopback.
//
// The mock cluster lives inside a carrier producer handle that never produces. Its brokers bind
// 127.0.0.1 with ports chosen by the OS. The main thread blocks SIGTERM and SIGINT before any
// librdkafka thread starts (so they inherit the mask) and waits for one with sigwait(), which
// makes shutdown an ordinary return from main. See docs/BROKER.md for its limits.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "base/log.h"
#include "base/status.h"
#include "tools/commands.h"

namespace turnstiled::tools {
namespace {

constexpr std::string_view kComponent = "broker";

// Writes `text` to `path` so a reader sees nothing or all of it: temp file, fsync, rename.
base::Status WriteFileAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) return base::Status::IoError("cannot create " + tmp);
  const bool written = std::fwrite(text.data(), 1, text.size(), f) == text.size() &&
                       std::fflush(f) == 0 && fsync(fileno(f)) == 0;
  if (std::fclose(f) != 0 || !written) {
    std::remove(tmp.c_str());
    return base::Status::IoError("cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return base::Status::IoError("cannot rename " + tmp + " to " + path);
  }
  return base::Status::Ok();
}

}  // namespace

int BrokerMain(int argc, char** argv) {
  CLI::App app(
      "Start the embedded development broker (librdkafka's mock cluster) on 127.0.0.1.\n"
      "For development, tests and demos only: it keeps about 5 MiB per partition.",
      "broker");
  int partitions = 6;
  int brokers = 1;
  std::vector<std::string> topics;
  std::string bootstrap_file;
  app.add_option("--partitions", partitions, "partitions of each pre-created topic")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  app.add_option("--topic", topics,
                 "topic to create with --partitions partitions (repeatable; default "
                 "turnstile-stream)");
  app.add_option("--brokers", brokers, "number of brokers in the cluster")
      ->check(CLI::Range(1, 16))
      ->capture_default_str();
  app.add_option("--bootstrap-file", bootstrap_file,
                 "write the bootstrap address here (atomically) once ready");
  CLI11_PARSE(app, argc, argv);
  if (topics.empty()) topics.push_back("turnstile-stream");

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  // The carrier handle never connects anywhere; keep it quiet about that.
  rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (rk == nullptr) {
    base::Log(base::LogLevel::kError, kComponent, "cannot create the carrier handle",
              {{"error", errstr}});
    return 1;
  }
  rd_kafka_mock_cluster_t* cluster = rd_kafka_mock_cluster_new(rk, brokers);
  if (cluster == nullptr) {
    base::Log(base::LogLevel::kError, kComponent, "cannot start the mock cluster");
    rd_kafka_destroy(rk);
    return 1;
  }
  int rc = 0;
  for (const std::string& topic : topics) {
    const rd_kafka_resp_err_t err =
        rd_kafka_mock_topic_create(cluster, topic.c_str(), partitions, std::min(brokers, 3));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      base::Log(base::LogLevel::kError, kComponent, "cannot create topic",
                {{"topic", topic}, {"error", rd_kafka_err2str(err)}});
      rc = 1;
    }
  }
  const std::string bootstrap = rd_kafka_mock_cluster_bootstraps(cluster);
  if (rc == 0) {
    std::printf("%s\n", bootstrap.c_str());
    std::fflush(stdout);
    if (!bootstrap_file.empty()) {
      const base::Status st = WriteFileAtomically(bootstrap_file, bootstrap + "\n");
      if (!st.ok()) {
        base::Log(base::LogLevel::kError, kComponent, "cannot write the bootstrap file",
                  {{"error", st.message()}});
        rc = 1;
      }
    }
  }
  if (rc == 0) {
    base::Log(base::LogLevel::kInfo, kComponent, "ready",
              {{"bootstrap", bootstrap},
               {"brokers", std::to_string(brokers)},
               {"partitions", std::to_string(partitions)},
               {"topics", std::to_string(topics.size())}});
    int sig = 0;
    while (sigwait(&stop_signals, &sig) != 0) {
    }
    base::Log(base::LogLevel::kInfo, kComponent, "stopping", {{"signal", strsignal(sig)}});
  }
  rd_kafka_mock_cluster_destroy(cluster);
  rd_kafka_destroy(rk);
  return rc;
}

}  // namespace turnstiled::tools
