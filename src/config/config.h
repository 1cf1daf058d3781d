// The daemon's configuration as plain structs, with every default written in place.
//
// The YAML schema (SPEC §2) maps one to one onto these structs: a key `window.size` is
// `Config::window.size`. LoadConfig() (loader.h) fills them and collects every error; nothing
// else in the program reads YAML. Durations are milliseconds.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/duration.h"

namespace turnstiled::config {

using base::Millis;

enum class SourceType { kKafka, kFile };
enum class FormatType { kMtaCsv, kSeedCsv, kJson };
enum class CounterMode { kCumulative, kDelta };
enum class WindowType { kTumbling, kHopping };
enum class EmitMode { kFinal, kUpdate };
enum class SinkType { kFile, kPostgres, kKafka, kStdout };
enum class FileFormat { kCsv, kJsonl };
enum class Compression { kZstd, kNone };
enum class StartOffset { kEarliest, kLatest };

struct KafkaSourceConfig {
  std::string bootstrap_servers = "127.0.0.1:9092";
  std::vector<std::string> topics = {"turnstile-stream"};
  std::string group_id = "turnstiled";
  StartOffset start_offset = StartOffset::kEarliest;
  int consumer_threads = 2;
  std::map<std::string, std::string> properties;  // passed to librdkafka as they are
};

struct FileSourceConfig {
  std::vector<std::string> paths;  // plain or .zst; globs allowed
};

struct SourceConfig {
  SourceType type = SourceType::kKafka;
  KafkaSourceConfig kafka;
  FileSourceConfig file;
};

// Key names in a JSON message (format.fields).
struct JsonFields {
  std::string station = "station";
  std::string device = "device";
  std::string time = "time";
  std::string entries = "entries";
  std::string exits = "exits";
};

struct FormatConfig {
  FormatType type = FormatType::kMtaCsv;
  std::string timezone = "UTC";
  CounterMode counters = CounterMode::kCumulative;
  int64_t max_delta = 10000;
  int64_t max_message_bytes = 64 * 1024;  // larger messages are dropped as `oversized`
  JsonFields fields;
};

// The longest window.size: a window's first and last event times are kept as 32-bit offsets
// (ms) from its start.
inline constexpr Millis kMaxWindowSize = 49 * base::kDay;

struct WindowConfig {
  WindowType type = WindowType::kTumbling;
  Millis size = 4 * base::kHour;
  Millis slide = 0;  // hopping only; 0 means "equal to size"
  Millis offset = 0;
  Millis allowed_lateness = base::kHour;
  Millis idle_timeout = 30 * base::kSecond;
  Millis max_future = base::kDay;
  // Records before this (UTC epoch ms; written as a date or an RFC 3339 time) are `too_old`.
  int64_t min_event_time = 946684800000;  // 2000-01-01T00:00:00Z
  EmitMode emit = EmitMode::kFinal;
  Millis update_interval = 10 * base::kSecond;  // emit: update only

  // The slide in force: `slide` for hopping windows, `size` for tumbling ones.
  Millis EffectiveSlide() const { return type == WindowType::kHopping && slide > 0 ? slide : size; }
};

struct SinkConfig {
  std::string name;
  SinkType type = SinkType::kStdout;
  // file
  std::string path;
  FileFormat format = FileFormat::kCsv;
  Compression compression = Compression::kZstd;
  int64_t roll_bytes = 128LL * 1024 * 1024;  // a file is closed when it reaches this size
  Millis roll_interval = base::kMinute;      // ... or when its first row is this old
  // Hive-style folders, outermost first, from "date" (UTC date of window_start), "hour" (UTC
  // hour of window_start) and "station". Default: date only (a few files per day).
  std::vector<std::string> partition_by = {"date"};
  // postgres
  std::string dsn;
  std::string table = "station_window";
  // kafka
  std::string bootstrap_servers;
  std::string topic;
  std::map<std::string, std::string> properties;
  bool transactional = true;
  int file_mode = 0640;  // file: permissions of lake files and folders
  int dir_mode = 0750;
  // every sink
  int batch_rows = 10000;
  Millis flush_interval = base::kSecond;
};

struct DeadLetterConfig {
  bool enabled = false;
  SinkType type = SinkType::kFile;  // kFile or kKafka
  std::string path;                 // file
  // A record longer than this is stored cut, with its full length and a flag.
  int64_t max_record_bytes = 64 * 1024;
  // The dead-letter files (the current one and one rotated) never take more than this.
  int64_t max_bytes = 256LL * 1024 * 1024;
  int file_mode = 0640;
  int dir_mode = 0750;
  std::string bootstrap_servers;  // kafka
  std::string topic;              // kafka
};

struct MetricsConfig {
  bool enabled = true;
  std::string listen = "127.0.0.1:9464";
};

// The live view (docs/LIVE.md): /live and /events.
struct LiveConfig {
  bool enabled = true;
  std::string listen;  // "": served on metrics.listen
  Millis coalesce = 250;
  Millis heartbeat = base::kSecond;
  int max_clients = 64;
  int buffer_events = 16384;
};

struct StateConfig {
  std::string dir = "/var/lib/turnstiled";
  Millis checkpoint_interval = 10 * base::kSecond;
  // Kafka topic that also receives every partition's snapshot, so that another instance of the
  // group can restore a partition it is given. Unset: "<group_id>-state". "": off.
  std::string changelog_topic;
  bool changelog_topic_set = false;
};

struct PipelineConfig {
  int shards = 0;            // 0: one per core, at least 1
  int queue_capacity = 16;   // batches per shard queue (per source): bounds memory
  int batch_records = 4096;  // records per routed batch
  Millis shutdown_timeout = 30 * base::kSecond;
};

struct LogConfig {
  std::string level = "info";     // debug | info | warn | error
  std::string format = "logfmt";  // logfmt | json
  // A progress line (records, rate, watermark, lag, windows, drops, checkpoint age) this often;
  // 0: none.
  Millis progress_interval = 30 * base::kSecond;
};

struct Config {
  SourceConfig source;
  FormatConfig format;
  WindowConfig window;
  std::vector<SinkConfig> sinks;
  DeadLetterConfig dead_letter;
  MetricsConfig metrics;
  LiveConfig live;
  StateConfig state;
  PipelineConfig pipeline;
  LogConfig log;
};

// Lower-case names used in YAML, logs and metrics: "kafka", "mta-csv", "tumbling", ...
const char* Name(SourceType v);
const char* Name(FormatType v);
const char* Name(CounterMode v);
const char* Name(WindowType v);
const char* Name(EmitMode v);
const char* Name(SinkType v);
const char* Name(FileFormat v);
const char* Name(Compression v);
const char* Name(StartOffset v);

}  // namespace turnstiled::config
