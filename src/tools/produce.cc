// `turnstiled produce`: publishes generated (--generate) or real (--replay) turnstile readings.
//
// Every message is keyed by STATION and sent with the idempotent producer, compressed. A
// message the client cannot queue (QUEUE_FULL) is retried after serving delivery reports, so
// a fast generator waits for the broker instead of failing. SIGINT/SIGTERM stop producing;
// what is queued is still flushed and reported. A second signal purges the queue instead.
// See docs/PRODUCER.md for formats and options.
#include <librdkafka/rdkafka.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/civil_time.h"
#include "base/log.h"
#include "tools/commands.h"
#include "tools/generator.h"
#include "tools/replay.h"

namespace turnstiled::tools {
namespace {

constexpr std::string_view kComponent = "produce";
using Clock = std::chrono::steady_clock;

std::atomic<int> g_signals{0};
static_assert(std::atomic<int>::is_always_lock_free);

void OnStopSignal(int) { g_signals.fetch_add(1, std::memory_order_relaxed); }

// Where messages go: Kafka, or stdout for --dry-run.
class Output {
 public:
  virtual ~Output() = default;
  // Queues one message. False only when the output cannot go on (a fatal producer error).
  virtual bool Send(std::string_view key, std::string_view value) = 0;
  // Serves delivery reports; cheap, call it often.
  virtual void Poll() {}
  // Waits for every queued message to be delivered or to fail.
  virtual void Finish() = 0;

  int64_t delivered() const { return delivered_; }
  int64_t failed() const { return failed_; }
  int64_t bytes() const { return bytes_; }

 protected:
  int64_t delivered_ = 0;  // acknowledged (Kafka) or written (dry run)
  int64_t failed_ = 0;
  int64_t bytes_ = 0;  // key + value bytes of delivered messages
};

// --dry-run: "key<TAB>value" lines, with newlines in the value written as the two bytes "\n".
class DryRunOutput final : public Output {
 public:
  bool Send(std::string_view key, std::string_view value) override {
    line_.assign(key);
    line_.push_back('\t');
    for (char c : value) {
      if (c == '\n') {
        line_.append("\\n");
      } else {
        line_.push_back(c);
      }
    }
    line_.push_back('\n');
    if (std::fwrite(line_.data(), 1, line_.size(), stdout) != line_.size()) {
      ++failed_;
      return false;
    }
    ++delivered_;
    bytes_ += static_cast<int64_t>(key.size() + value.size());
    return true;
  }
  void Finish() override { std::fflush(stdout); }

 private:
  std::string line_;
};

class KafkaOutput final : public Output {
 public:
  static base::Result<std::unique_ptr<KafkaOutput>> Create(
      const std::string& bootstrap, const std::string& topic, const std::string& compression,
      const std::vector<std::string>& properties) {
    std::unique_ptr<KafkaOutput> out(new KafkaOutput());
    char errstr[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    // Throughput defaults first, so -X can override any of them.
    std::vector<std::pair<std::string, std::string>> settings = {
        {"bootstrap.servers", bootstrap},
        {"enable.idempotence", "true"},
        {"compression.type", compression},
        {"linger.ms", "50"},
        {"batch.num.messages", "100000"},
        {"queue.buffering.max.messages", "1000000"},
        // Java clients' partitioner: the same key lands in the same partition from any client.
        {"partitioner", "murmur2_random"},
    };
    for (const std::string& p : properties) {
      const size_t eq = p.find('=');
      if (eq == std::string::npos || eq == 0) {
        rd_kafka_conf_destroy(conf);
        return base::Status::InvalidArgument("-X expects key=value, got '" + p + "'");
      }
      settings.emplace_back(p.substr(0, eq), p.substr(eq + 1));
    }
    for (const auto& [key, value] : settings) {
      if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof errstr) !=
          RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return base::Status::InvalidArgument(std::string(errstr));
      }
    }
    rd_kafka_conf_set_opaque(conf, out.get());
    rd_kafka_conf_set_dr_msg_cb(conf, &KafkaOutput::OnDelivery);
    rd_kafka_conf_set_error_cb(conf, &KafkaOutput::OnError);
    rd_kafka_conf_set_log_cb(conf, &KafkaOutput::OnLog);
    out->rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (out->rk_ == nullptr) {
      rd_kafka_conf_destroy(conf);
      return base::Status::InvalidArgument(std::string(errstr));
    }
    out->rkt_ = rd_kafka_topic_new(out->rk_, topic.c_str(), nullptr);
    return out;
  }

  ~KafkaOutput() override {
    if (rkt_ != nullptr) rd_kafka_topic_destroy(rkt_);
    if (rk_ != nullptr) rd_kafka_destroy(rk_);
    if (failed_ > 0) {
      base::Log(base::LogLevel::kError, kComponent, "deliveries failed",
                {{"failures", std::to_string(failed_)}, {"first_error", first_error_}});
    }
  }

  bool Send(std::string_view key, std::string_view value) override {
    for (;;) {
      if (fatal_) return false;
      if (rd_kafka_produce(rkt_, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                           const_cast<char*>(value.data()), value.size(), key.data(), key.size(),
                           nullptr) == 0) {
        return true;
      }
      const rd_kafka_resp_err_t err = rd_kafka_last_error();
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        ++failed_;
        NoteError(rd_kafka_err2str(err));
        return true;
      }
      rd_kafka_poll(rk_, 10);  // the queue drains as deliveries are acknowledged
      if (g_signals.load(std::memory_order_relaxed) >= 2) {
        ++failed_;
        NoteError("purged on signal");
        return true;
      }
    }
  }

  void Poll() override { rd_kafka_poll(rk_, 0); }

  void Finish() override {
    bool purged = false;
    while (rd_kafka_outq_len(rk_) > 0) {
      if (!purged && (fatal_ || g_signals.load(std::memory_order_relaxed) >= 2)) {
        // The user asked twice, or the producer cannot go on: fail what is left, now.
        rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        purged = true;
      }
      rd_kafka_flush(rk_, 200);
    }
    rd_kafka_poll(rk_, 0);
  }

 private:
  KafkaOutput() = default;

  static void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    auto* self = static_cast<KafkaOutput*>(opaque);
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      ++self->delivered_;
      self->bytes_ += static_cast<int64_t>(m->len + m->key_len);
    } else {
      ++self->failed_;
      self->NoteError(rd_kafka_err2str(m->err));
    }
  }

  static void OnError(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
    auto* self = static_cast<KafkaOutput*>(opaque);
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
      char why[512];
      rd_kafka_fatal_error(rk, why, sizeof why);
      self->fatal_ = true;
      self->NoteError(why);
      base::Log(base::LogLevel::kError, kComponent, "fatal producer error", {{"error", why}});
      return;
    }
    // Transient (a broker down, a reconnect): librdkafka retries on its own.
    base::Log(
        base::LogLevel::kWarn, kComponent, "kafka error",
        {{"error", rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err))}, {"reason", reason}});
  }

  // librdkafka's own log lines, as structured lines like every other. They tell of trouble the
  // client retries by itself (a refused connection, a broker down), so they are warnings at
  // most: what fails for good reaches OnError() and the delivery reports. Called from
  // librdkafka's threads; base::Log is safe there.
  static void OnLog(const rd_kafka_t*, int level, const char* facility, const char* text) {
    base::LogLibraryLine(base::FromSyslogLevel(level), kComponent, facility, text);
  }

  void NoteError(std::string_view why) {
    if (first_error_.empty()) first_error_ = why;
  }

  rd_kafka_t* rk_ = nullptr;
  rd_kafka_topic_t* rkt_ = nullptr;
  bool fatal_ = false;  // set on the polling thread (callbacks run inside poll/flush)
  std::string first_error_;
};

// Sleeps until `deadline`, serving deliveries meanwhile; returns early on a signal.
void WaitUntil(Clock::time_point deadline, Output* out) {
  for (;;) {
    out->Poll();
    const auto now = Clock::now();
    if (now >= deadline || g_signals.load(std::memory_order_relaxed) > 0) return;
    std::this_thread::sleep_for(
        std::min<Clock::duration>(deadline - now, std::chrono::milliseconds(50)));
  }
}

// "YYYY-MM-DD HH:MM:SS" or "YYYY-MM-DDTHH:MM:SS" (local wall clock) -> local seconds.
bool ParseStart(const std::string& text, int64_t* local_seconds) {
  unsigned y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  char sep = 0;
  int used = 0;
  if (std::sscanf(text.c_str(), "%4u-%2u-%2u%c%2u:%2u:%2u%n", &y, &mo, &d, &sep, &h, &mi, &s,
                  &used) != 7 ||
      static_cast<size_t>(used) != text.size() || (sep != ' ' && sep != 'T') ||
      !base::IsValidDate(y, mo, d) || h > 23 || mi > 59 || s > 59) {
    return false;
  }
  *local_seconds = base::DaysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
  return true;
}

}  // namespace

int ProduceMain(int argc, char** argv) {
  CLI::App app("Publish generated (--generate) or real MTA (--replay) turnstile readings.",
               "produce");
  std::string bootstrap;
  std::string topic = "turnstile-stream";
  std::string format_name = "mta-csv";
  std::string compression = "zstd";
  std::vector<std::string> properties;
  bool generate = false;
  std::vector<std::string> replay_files;
  bool dry_run = false;
  double rate = 0;
  int64_t count = 0;
  int stations = 400;
  uint64_t seed = 1;
  std::string start = "2024-01-06 00:00:00";
  std::string time_zone = "America/New_York";
  double speedup = 0;

  app.add_option("-b,--bootstrap-servers", bootstrap, "Kafka bootstrap servers (host:port,...)");
  app.add_option("--topic", topic, "topic to publish to")->capture_default_str();
  app.add_option("--format", format_name, "message format")
      ->check(CLI::IsMember({"mta-csv", "seed-csv", "json"}))
      ->capture_default_str();
  app.add_option("--compression", compression, "compression.type of the producer")
      ->check(CLI::IsMember({"none", "gzip", "snappy", "lz4", "zstd"}))
      ->capture_default_str();
  app.add_option("-X", properties, "librdkafka property key=value (repeatable)");
  auto* gen_opt = app.add_flag("--generate", generate, "simulate the subway network");
  auto* replay_opt = app.add_option("--replay", replay_files,
                                    "real MTA weekly files (plain or .zst), in event-time order");
  gen_opt->excludes(replay_opt);
  app.add_flag("--dry-run", dry_run, "write key<TAB>value lines to stdout instead of Kafka");
  app.add_option("--rate", rate, "generate: records per second; 0 = as fast as possible")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--count", count, "generate: records to produce; 0 = until stopped")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--stations", stations, "generate: number of stations")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--seed", seed, "generate: random seed; the same seed gives the same data")
      ->capture_default_str();
  app.add_option("--start", start, "generate: first event time, local (YYYY-MM-DD HH:MM:SS)")
      ->capture_default_str();
  app.add_option("--timezone", time_zone, "generate: time zone of the local times")
      ->capture_default_str();
  app.add_option("--speedup", speedup,
                 "replay: pace by event time, X times real time; 0 = as fast as possible")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  if (!generate && replay_files.empty()) {
    std::fprintf(stderr, "turnstiled produce: give --generate or --replay FILE...\n");
    return 2;
  }
  if (!dry_run && bootstrap.empty()) {
    std::fprintf(stderr, "turnstiled produce: --bootstrap-servers is required (or --dry-run)\n");
    return 2;
  }
  config::FormatType format = config::FormatType::kMtaCsv;
  if (format_name == "seed-csv") format = config::FormatType::kSeedCsv;
  if (format_name == "json") format = config::FormatType::kJson;
  if (!replay_files.empty() && format != config::FormatType::kMtaCsv) {
    std::fprintf(stderr,
                 "turnstiled produce: replay supports --format mta-csv (the files' own rows)\n");
    return 2;
  }
  GeneratorOptions gen_options;
  gen_options.seed = seed;
  gen_options.stations = stations;
  gen_options.time_zone = time_zone;
  if (!ParseStart(start, &gen_options.start_local_seconds)) {
    std::fprintf(stderr, "turnstiled produce: --start expects YYYY-MM-DD HH:MM:SS, got '%s'\n",
                 start.c_str());
    return 2;
  }

  // Load before connecting, so a bad file fails fast and the replay's pace is not the disk's.
  std::unique_ptr<Generator> generator;
  std::unique_ptr<ReplaySet> replay;
  if (generate) {
    auto g = Generator::Create(gen_options);
    if (!g.ok()) {
      std::fprintf(stderr, "turnstiled produce: %s\n", g.status().message().c_str());
      return 2;
    }
    generator = std::move(g).value();
  } else {
    auto r = ReplaySet::Load(replay_files);
    if (!r.ok()) {
      std::fprintf(stderr, "turnstiled produce: %s\n", r.status().message().c_str());
      return 1;
    }
    replay = std::make_unique<ReplaySet>(std::move(r).value());
  }

  std::unique_ptr<Output> out;
  if (dry_run) {
    out = std::make_unique<DryRunOutput>();
  } else {
    auto k = KafkaOutput::Create(bootstrap, topic, compression, properties);
    if (!k.ok()) {
      std::fprintf(stderr, "turnstiled produce: %s\n", k.status().message().c_str());
      return 2;
    }
    out = std::move(k).value();
  }

  struct sigaction sa = {};
  sa.sa_handler = &OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  const auto started = Clock::now();
  int64_t sent = 0;
  bool ok = true;
  auto stopped = [] { return g_signals.load(std::memory_order_relaxed) > 0; };
  if (generator != nullptr) {
    GeneratedReading reading;
    std::string value;
    for (; (count == 0 || sent < count) && ok && !stopped(); ++sent) {
      generator->Next(&reading);
      value.clear();
      RenderReading(reading, format, &value);
      if (rate > 0) {
        WaitUntil(started + std::chrono::duration_cast<Clock::duration>(
                                std::chrono::duration<double>(static_cast<double>(sent) / rate)),
                  out.get());
        if (stopped()) break;
      } else if ((sent & 1023) == 0) {
        out->Poll();
      }
      ok = out->Send(reading.station->name, value);
    }
  } else {
    const auto& rows = replay->rows();
    const int64_t first_time = rows.empty() ? 0 : rows.front().local_seconds;
    for (const ReplayRow& row : rows) {
      if (!ok || stopped()) break;
      if (speedup > 0) {
        const double offset_s = static_cast<double>(row.local_seconds - first_time) / speedup;
        WaitUntil(started + std::chrono::duration_cast<Clock::duration>(
                                std::chrono::duration<double>(offset_s)),
                  out.get());
        if (stopped()) break;
      } else if ((sent & 1023) == 0) {
        out->Poll();
      }
      ok = out->Send(row.station, row.line);
      ++sent;
    }
  }
  out->Finish();

  const double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
  char elapsed_text[32], rate_text[32];
  std::snprintf(elapsed_text, sizeof elapsed_text, "%.3f", elapsed);
  std::snprintf(rate_text, sizeof rate_text, "%.0f",
                elapsed > 0 ? static_cast<double>(out->delivered()) / elapsed : 0.0);
  // Anything sent but not acknowledged failed, whether reported, purged or never queued.
  const int64_t failures = sent - out->delivered();
  base::Log(failures > 0 ? base::LogLevel::kError : base::LogLevel::kInfo, kComponent, "done",
            {{"records", std::to_string(out->delivered())},
             {"bytes", std::to_string(out->bytes())},
             {"elapsed_s", elapsed_text},
             {"rate", rate_text},
             {"failures", std::to_string(failures)},
             {"stopped_by_signal", stopped() ? "true" : "false"}});
  return failures > 0 || !ok ? 1 : 0;
}

}  // namespace turnstiled::tools
