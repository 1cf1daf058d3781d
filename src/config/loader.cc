// The config schema: which keys each section has, what they mean to the reader, and the
// checks that span keys. The mechanics of reading (types, paths, lines, unknown keys,
// ${VAR} expansion) live in reader.h.
#include "config/loader.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "base/civil_time.h"
#include "base/log.h"
#include "base/time_zone.h"
#include "config/kafka_properties.h"
#include "config/reader.h"

namespace turnstiled::config {
namespace {

using base::FormatDuration;

constexpr SourceType kSourceTypes[] = {SourceType::kKafka, SourceType::kFile};
constexpr FormatType kFormatTypes[] = {FormatType::kMtaCsv, FormatType::kSeedCsv,
                                       FormatType::kJson};
constexpr CounterMode kCounterModes[] = {CounterMode::kCumulative, CounterMode::kDelta};
constexpr WindowType kWindowTypes[] = {WindowType::kTumbling, WindowType::kHopping};
constexpr EmitMode kEmitModes[] = {EmitMode::kFinal, EmitMode::kUpdate};
constexpr SinkType kSinkTypes[] = {SinkType::kFile, SinkType::kPostgres, SinkType::kKafka,
                                   SinkType::kStdout};
constexpr SinkType kDeadLetterTypes[] = {SinkType::kFile, SinkType::kKafka};
constexpr FileFormat kFileFormats[] = {FileFormat::kCsv, FileFormat::kJsonl};
constexpr Compression kCompressions[] = {Compression::kZstd, Compression::kNone};
constexpr StartOffset kStartOffsets[] = {StartOffset::kEarliest, StartOffset::kLatest};

std::string Plural(size_t n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

bool IsWordChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// Sink names label metrics and log lines, so they stay plain.
bool IsSinkName(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsWordChar(c) && c != '-') return false;
  }
  return true;
}

// The table name is spliced into SQL, so only a plain (optionally schema-qualified)
// identifier is accepted: nothing needs quoting, nothing can inject.
bool IsSqlName(const std::string& s) {
  size_t part = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == '.') {
      if (part == 0) return false;
      part = 0;
      continue;
    }
    if (!IsWordChar(s[i]) || (part == 0 && s[i] >= '0' && s[i] <= '9')) return false;
    ++part;
  }
  return s.find('.') == s.rfind('.');
}

// "host:port" with a numeric port; the host may be empty (all interfaces) or [v6].
// IPv4:PORT or [IPv6]:PORT, as the HTTP server binds them (it takes no host names).
bool IsListenAddress(const std::string& s) {
  const size_t colon = s.rfind(':');
  if (colon == std::string::npos || colon + 1 == s.size() || colon == 0) return false;
  int port = 0;
  for (size_t i = colon + 1; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    port = port * 10 + (s[i] - '0');
    if (port > 65535) return false;
  }
  const std::string host = s.substr(0, colon);
  if (host.front() == '[') {
    if (host.back() != ']' || host.size() < 4) return false;
    for (size_t i = 1; i + 1 < host.size(); ++i) {
      const char c = host[i];
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') return false;
    }
    return true;
  }
  int parts = 0;
  size_t i = 0;
  while (i <= host.size()) {
    size_t j = i;
    int v = 0;
    while (j < host.size() && host[j] >= '0' && host[j] <= '9' && j - i < 3) {
      v = v * 10 + (host[j] - '0');
      ++j;
    }
    if (j == i || v > 255) return false;
    ++parts;
    if (j == host.size()) break;
    if (host[j] != '.') return false;
    i = j + 1;
  }
  return parts == 4;
}

// Each librdkafka property under `key` (already read into `props`), checked by librdkafka
// itself, reported at its own line.
void CheckKafkaProperties(MapReader& r, std::string_view key, bool read_ok,
                          const std::map<std::string, std::string>& props) {
  if (!read_ok || !r.Has(key) || props.empty()) return;
  MapReader pr = r.Map(key);
  for (const auto& [name, value] : props) {
    const std::string why = CheckKafkaProperty(name, value);
    if (!why.empty()) pr.KeyError(name, why);
  }
}

void ReadSource(MapReader& root, SourceConfig* s) {
  MapReader r = root.Map("source");
  r.Enum("type", &s->type, kSourceTypes);

  MapReader k = r.Map("kafka");
  k.String("bootstrap_servers", &s->kafka.bootstrap_servers);
  const bool topics_ok = k.StringList("topics", &s->kafka.topics);
  k.String("group_id", &s->kafka.group_id);
  k.Enum("start_offset", &s->kafka.start_offset, kStartOffsets);
  k.Int("consumer_threads", &s->kafka.consumer_threads, 1);
  const bool props_ok = k.StringMap("properties", &s->kafka.properties);
  k.Finish();
  CheckKafkaProperties(k, "properties", props_ok, s->kafka.properties);

  MapReader f = r.Map("file");
  const bool paths_ok = f.StringList("paths", &s->file.paths);
  f.Finish();
  r.Finish();

  if (s->type == SourceType::kKafka) {
    if (topics_ok && s->kafka.topics.empty()) {
      k.ValueError("topics", "needs at least one topic");
    }
    if (s->kafka.bootstrap_servers.empty()) {
      k.ValueError("bootstrap_servers", "must not be empty (source.type is kafka)");
    }
    if (s->kafka.group_id.empty()) {
      k.ValueError("group_id", "must not be empty: offsets are committed for the group");
    }
  } else if (!f.Has("paths")) {
    f.Missing("paths", "source.type is file");
  } else if (paths_ok && s->file.paths.empty()) {
    f.ValueError("paths", "needs at least one path (source.type is file)");
  }
}

void ReadFormat(MapReader& root, FormatConfig* f) {
  MapReader r = root.Map("format");
  r.Enum("type", &f->type, kFormatTypes);
  if (r.String("timezone", &f->timezone) && r.Has("timezone")) {
    if (!base::LocalTimeConverter::Create(f->timezone).ok()) {
      r.ValueError("timezone", "unknown time zone '" + f->timezone +
                                   "'; use an IANA name such as America/New_York, or UTC");
    }
  }
  r.Enum("counters", &f->counters, kCounterModes);
  r.Int("max_delta", &f->max_delta, 0);
  r.Int("max_message_bytes", &f->max_message_bytes, 1);

  MapReader fields = r.Map("fields");
  const struct {
    const char* key;
    std::string* out;
  } kFields[] = {{"station", &f->fields.station},
                 {"device", &f->fields.device},
                 {"time", &f->fields.time},
                 {"entries", &f->fields.entries},
                 {"exits", &f->fields.exits}};
  for (const auto& field : kFields) {
    if (fields.String(field.key, field.out) && field.out->empty()) {
      fields.ValueError(field.key, "must name a JSON key, not be empty");
    }
  }
  fields.Finish();
  r.Finish();
}

// A permission mode written in octal ("0640"), for file_mode and dir_mode.
void ReadMode(MapReader& r, std::string_view key, int* out) {
  std::string text;
  if (!r.String(key, &text) || !r.Has(key)) return;
  char* end = nullptr;
  const long v = std::strtol(text.c_str(), &end, 8);
  if (text.empty() || *end != '\0' || v < 0 || v > 0777) {
    r.ValueError(key, "expected an octal permission mode such as 0640, got '" + text + "'");
    return;
  }
  *out = static_cast<int>(v);
}

// A size: a whole number of bytes, or with a unit: 64KiB, 1MiB, 2GiB (also KB, MB, GB).
void ReadBytes(MapReader& r, std::string_view key, int64_t min, int64_t* out) {
  std::string text;
  if (!r.String(key, &text) || !r.Has(key)) return;
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  const std::string unit = text.substr(digits);
  int64_t scale = 0;
  for (const auto& [name, factor] :
       std::initializer_list<std::pair<const char*, int64_t>>{{"", 1},
                                                              {"B", 1},
                                                              {"KiB", 1LL << 10},
                                                              {"MiB", 1LL << 20},
                                                              {"GiB", 1LL << 30},
                                                              {"KB", 1000},
                                                              {"MB", 1000000},
                                                              {"GB", 1000000000}}) {
    if (unit == name) scale = factor;
  }
  const int64_t n = digits > 0 && digits <= 12 ? std::stoll(text.substr(0, digits)) : -1;
  if (scale == 0 || n < 0 || n * scale < min) {
    r.ValueError(key, "expected a size of at least " + std::to_string(min) +
                          " bytes, such as 65536, 64KiB or 1MiB, got '" + text + "'");
    return;
  }
  *out = n * scale;
}

// "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SSZ" (UTC) -> epoch milliseconds.
bool ParseUtcTime(const std::string& text, int64_t* out_ms) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  char tail = 0;
  int n = 0;
  if (text.size() == 10) {
    n = std::sscanf(text.c_str(), "%4d-%2d-%2d%c", &y, &mo, &d, &tail);
    if (n != 3) return false;
  } else if (text.size() == 20) {
    n = std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c", &y, &mo, &d, &h, &mi, &s, &tail);
    if (n != 7 || tail != 'Z') return false;
  } else {
    return false;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 59) return false;
  *out_ms = (base::DaysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s) * 1000;
  return true;
}

void ReadWindow(MapReader& root, WindowConfig* w) {
  MapReader r = root.Map("window");
  r.Enum("type", &w->type, kWindowTypes);
  const bool size_ok = r.Duration("size", &w->size);
  const bool slide_ok = r.Duration("slide", &w->slide);
  const bool offset_ok = r.Duration("offset", &w->offset);
  r.Duration("allowed_lateness", &w->allowed_lateness);
  r.Duration("idle_timeout", &w->idle_timeout);
  r.Duration("max_future", &w->max_future);
  std::string min_time;
  if (r.String("min_event_time", &min_time) && r.Has("min_event_time") &&
      !ParseUtcTime(min_time, &w->min_event_time)) {
    r.ValueError("min_event_time",
                 "expected a UTC date or time, e.g. 2000-01-01 or "
                 "2000-01-01T00:00:00Z, got '" +
                     min_time + "'");
  }
  r.Enum("emit", &w->emit, kEmitModes);
  const bool update_ok = r.Duration("update_interval", &w->update_interval);
  r.Finish();

  if (!size_ok) return;  // every check below is relative to the size
  if (w->size <= 0) {
    r.ValueError("size", "must be greater than 0");
    return;
  }
  if (w->size > kMaxWindowSize) {
    r.ValueError("size", "must be at most " + FormatDuration(kMaxWindowSize) + ", got " +
                             FormatDuration(w->size));
    return;
  }
  const std::string size = FormatDuration(w->size);
  if (w->type == WindowType::kHopping && slide_ok) {
    const std::string slide = FormatDuration(w->slide);
    if (!r.Has("slide")) {
      r.Missing("slide", "window.type is hopping");
    } else if (w->slide <= 0) {
      r.ValueError("slide", "must be greater than 0 for hopping windows");
    } else if (w->slide > w->size) {
      r.ValueError("slide", "must not be larger than window.size (" + size +
                                "): the windows would leave gaps, and records in a gap would be "
                                "counted in no window");
    } else if (w->size % w->slide != 0) {
      r.ValueError("slide", "window.size (" + size + ") must be a whole multiple of the slide (" +
                                slide +
                                "), so that every record falls into the same number of "
                                "windows (size / slide)");
    }
  } else if (w->type == WindowType::kTumbling && slide_ok && r.Has("slide") &&
             w->slide != w->size) {
    r.ValueError("slide", "tumbling windows slide by their size (" + size +
                              "); remove slide, or use type: hopping");
  }
  const Millis slide = w->EffectiveSlide();
  if (offset_ok && slide > 0 && w->offset >= slide) {
    r.ValueError("offset", "must be smaller than the slide (" + FormatDuration(slide) +
                               "): window starts are offset + k * slide");
  }
  if (w->emit == EmitMode::kUpdate && update_ok && w->update_interval <= 0) {
    r.ValueError("update_interval", "must be greater than 0 when emit is update");
  }
}

// Keys that only mean something for some sink types. A key given to a sink type that
// ignores it is almost always a slip (a dsn on a file sink), so it is an error.
struct SinkKey {
  const char* key;
  SinkType type;
};
constexpr SinkKey kTypedSinkKeys[] = {
    {"path", SinkType::kFile},
    {"format", SinkType::kFile},
    {"compression", SinkType::kFile},
    {"roll_bytes", SinkType::kFile},
    {"roll_interval", SinkType::kFile},
    {"partition_by", SinkType::kFile},
    {"file_mode", SinkType::kFile},
    {"dir_mode", SinkType::kFile},
    {"dsn", SinkType::kPostgres},
    {"table", SinkType::kPostgres},
    {"bootstrap_servers", SinkType::kKafka},
    {"topic", SinkType::kKafka},
    {"properties", SinkType::kKafka},
    {"transactional", SinkType::kKafka},
};

void ReadSink(MapReader& r, SinkConfig* s) {
  r.String("name", &s->name);
  const bool type_ok = r.Enum("type", &s->type, kSinkTypes);
  r.String("path", &s->path);
  r.Enum("format", &s->format, kFileFormats);
  r.Enum("compression", &s->compression, kCompressions);
  r.Int("roll_bytes", &s->roll_bytes, 1);
  r.Duration("roll_interval", &s->roll_interval);
  if (r.StringList("partition_by", &s->partition_by)) {
    std::set<std::string> seen;
    for (const std::string& f : s->partition_by) {
      if (f != "date" && f != "hour" && f != "station") {
        r.ValueError("partition_by",
                     "unknown partition field '" + f + "'; use a list of: date, hour, station");
      } else if (!seen.insert(f).second) {
        r.ValueError("partition_by", "'" + f + "' is listed twice");
      }
    }
  }
  ReadMode(r, "file_mode", &s->file_mode);
  ReadMode(r, "dir_mode", &s->dir_mode);
  r.String("dsn", &s->dsn);
  const bool table_ok = r.String("table", &s->table);
  r.String("bootstrap_servers", &s->bootstrap_servers);
  r.String("topic", &s->topic);
  const bool props_ok = r.StringMap("properties", &s->properties);
  r.Bool("transactional", &s->transactional);
  r.Int("batch_rows", &s->batch_rows, 1);
  r.Duration("flush_interval", &s->flush_interval);
  r.Finish();

  if (!r.Has("name")) {
    r.Missing("name");
  } else if (!IsSinkName(s->name)) {
    r.ValueError("name", "invalid sink name '" + s->name +
                             "'; use letters, digits, '_' and '-' (it labels metrics and logs)");
  }
  if (!r.Has("type")) {
    r.Missing("type", "one of: file, postgres, kafka, stdout");
    return;
  }
  if (!type_ok) return;
  const std::string why = "sinks of type " + std::string(Name(s->type));
  switch (s->type) {
    case SinkType::kFile:
      if (!r.Has("path")) {
        r.Missing("path", "a file sink writes under it");
      } else if (s->path.empty()) {
        r.ValueError("path", "must not be empty; name the lake's folder, e.g. out/lake");
      }
      break;
    case SinkType::kPostgres:
      if (!r.Has("dsn")) r.Missing("dsn", "a postgres sink connects with it");
      if (table_ok && !IsSqlName(s->table)) {
        r.ValueError("table", "invalid table name '" + s->table +
                                  "'; use letters, digits and '_', optionally as schema.table");
      }
      break;
    case SinkType::kKafka:
      if (!r.Has("topic")) r.Missing("topic", "a kafka sink writes to it");
      CheckKafkaProperties(r, "properties", props_ok, s->properties);
      break;
    case SinkType::kStdout:
      break;
  }
  for (const SinkKey& k : kTypedSinkKeys) {
    if (k.type != s->type && r.Has(k.key)) {
      r.KeyError(k.key, "key '" + std::string(k.key) + "' does not apply to a " + Name(s->type) +
                            " sink (it is for " + Name(k.type) + " sinks)");
    }
  }
}

void ReadSinks(MapReader& root, Diagnostics* diag, std::vector<SinkConfig>* sinks) {
  const YAML::Node list = root.Node("sinks");
  if (!root.Has("sinks")) {
    root.Missing("sinks", "at least one sink; without one, results would go nowhere");
    return;
  }
  if (!list.IsSequence()) {
    std::string msg = "expected a list of sinks, got " + Describe(list);
    if (list.IsMap()) msg += "; start each sink with '- '";
    root.ValueError("sinks", std::move(msg));
    return;
  }
  if (list.size() == 0) {
    root.ValueError("sinks", "needs at least one sink; without one, results would go nowhere");
    return;
  }
  std::map<std::string, size_t> first_use;
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node item = list[i];
    const std::string path = "sinks[" + std::to_string(i) + "]";
    const int line = LineOf(item) > 0 ? LineOf(item) : root.KeyLine("sinks");
    if (item.IsNull()) {
      diag->Add(path, line, "expected a map (a sink with a name and a type), got nothing");
      continue;
    }
    MapReader r(diag, item, path, line);
    SinkConfig sink;
    ReadSink(r, &sink);
    if (!sink.name.empty()) {
      auto [it, fresh] = first_use.emplace(sink.name, i);
      if (!fresh) {
        r.ValueError("name", "duplicate sink name '" + sink.name + "' (also sinks[" +
                                 std::to_string(it->second) + "]); names must be unique");
      }
    }
    sinks->push_back(std::move(sink));
  }
}

void ReadDeadLetter(MapReader& root, DeadLetterConfig* d) {
  // The section's presence turns it on; `enabled: false` keeps it written down but off.
  d->enabled = root.Has("dead_letter");
  MapReader r = root.Map("dead_letter");
  r.Bool("enabled", &d->enabled);
  const bool type_ok = r.Enum("type", &d->type, kDeadLetterTypes);
  r.String("path", &d->path);
  r.String("bootstrap_servers", &d->bootstrap_servers);
  r.String("topic", &d->topic);
  ReadBytes(r, "max_record_bytes", 1, &d->max_record_bytes);
  ReadBytes(r, "max_bytes", 4096, &d->max_bytes);
  ReadMode(r, "file_mode", &d->file_mode);
  ReadMode(r, "dir_mode", &d->dir_mode);
  r.Finish();
  if (!d->enabled || !type_ok) return;
  if (d->type == SinkType::kFile && !r.Has("path")) {
    r.Missing("path", "dead_letter.type is file");
  } else if (d->type == SinkType::kFile && d->path.empty()) {
    r.ValueError("path", "must not be empty; name a folder, e.g. out/dead-letter");
  } else if (d->type == SinkType::kKafka && !r.Has("topic")) {
    r.Missing("topic", "dead_letter.type is kafka");
  }
}

void ReadLog(MapReader& root, LogConfig* l) {
  MapReader r = root.Map("log");
  if (r.String("level", &l->level) && r.Has("level")) {
    base::LogLevel level;
    if (!base::ParseLogLevel(l->level, &level)) {
      r.ValueError("level",
                   "invalid value '" + l->level + "'; expected one of: debug, info, warn, error");
    }
  }
  if (r.String("format", &l->format) && r.Has("format")) {
    base::LogFormat format;
    if (!base::ParseLogFormat(l->format, &format)) {
      r.ValueError("format", "invalid value '" + l->format + "'; expected one of: logfmt, json");
    }
  }
  if (r.Duration("progress_interval", &l->progress_interval) && l->progress_interval < 0) {
    r.ValueError("progress_interval", "must not be negative (0 turns the progress line off)");
  }
  r.Finish();
}

void ReadMetrics(MapReader& root, MetricsConfig* m) {
  if (root.Has("metrics")) m->enabled = true;
  MapReader r = root.Map("metrics");
  r.Bool("enabled", &m->enabled);
  if (r.String("listen", &m->listen) && r.Has("listen") && !IsListenAddress(m->listen)) {
    r.ValueError("listen", "invalid address '" + m->listen +
                               "'; write IP:PORT, e.g. 127.0.0.1:9464, 0.0.0.0:9464 for every "
                               "interface, or [::1]:9464 (port 0 picks a free one)");
  }
  r.Finish();
}

void ReadLive(MapReader& root, LiveConfig* l) {
  MapReader r = root.Map("live");
  r.Bool("enabled", &l->enabled);
  if (r.String("listen", &l->listen) && !l->listen.empty() && !IsListenAddress(l->listen)) {
    r.ValueError("listen", "invalid address '" + l->listen +
                               "'; write IP:PORT, e.g. 127.0.0.1:9465, or \"\" to serve the live "
                               "view on metrics.listen");
  }
  if (r.Duration("coalesce", &l->coalesce) && (l->coalesce < 10 || l->coalesce > base::kMinute)) {
    r.ValueError("coalesce", "must be between 10ms and 1m");
  }
  if (r.Duration("heartbeat", &l->heartbeat) &&
      (l->heartbeat < 100 || l->heartbeat > base::kMinute)) {
    r.ValueError("heartbeat", "must be between 100ms and 1m");
  }
  // Each client holds one of the HTTP server's 256 worker threads: leave room for probes.
  if (r.Int("max_clients", &l->max_clients, 1) && l->max_clients > 200) {
    r.ValueError("max_clients", "must be at most 200");
  }
  if (r.Int("buffer_events", &l->buffer_events, 16) && l->buffer_events > 1000000) {
    r.ValueError("buffer_events", "must be at most 1000000");
  }
  r.Finish();
}

void ReadState(MapReader& root, StateConfig* s) {
  MapReader r = root.Map("state");
  if (r.String("dir", &s->dir) && s->dir.empty()) r.ValueError("dir", "must not be empty");
  if (r.Duration("checkpoint_interval", &s->checkpoint_interval) && s->checkpoint_interval <= 0) {
    r.ValueError("checkpoint_interval", "must be greater than 0");
  }
  s->changelog_topic_set =
      r.String("changelog_topic", &s->changelog_topic) && r.Has("changelog_topic");
  r.Finish();
}

void ReadPipeline(MapReader& root, PipelineConfig* p) {
  MapReader r = root.Map("pipeline");
  r.Int("shards", &p->shards, 0);
  r.Int("queue_capacity", &p->queue_capacity, 1);
  r.Int("batch_records", &p->batch_records, 1);
  r.Duration("shutdown_timeout", &p->shutdown_timeout);
  r.Finish();
}

// Kafka destinations without their own bootstrap_servers use the source cluster's: the
// results topic and the dead letter usually live next to the input.
void FillDefaults(Config* c) {
  for (SinkConfig& s : c->sinks) {
    if (s.type == SinkType::kKafka && s.bootstrap_servers.empty()) {
      s.bootstrap_servers = c->source.kafka.bootstrap_servers;
    }
  }
  if (c->dead_letter.type == SinkType::kKafka && c->dead_letter.bootstrap_servers.empty()) {
    c->dead_letter.bootstrap_servers = c->source.kafka.bootstrap_servers;
  }
}

}  // namespace

std::string ConfigError::Format(std::string_view file) const {
  std::string out(file);
  if (line > 0) {
    out += ':';
    out += std::to_string(line);
  }
  out += ": ";
  if (!path.empty()) out += path + ": ";
  out += message;
  return out;
}

LoadResult LoadConfigText(std::string_view yaml, const EnvLookup& env) {
  LoadResult result;
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(yaml));
  } catch (const YAML::Exception& e) {
    result.errors.push_back(
        {"", e.mark.line >= 0 ? e.mark.line + 1 : 0, "YAML syntax error: " + e.msg});
    return result;
  }
  Diagnostics diag(env);
  const YAML::Node doc = docs.empty() ? YAML::Node() : docs[0];
  if (docs.size() > 1) {
    // Which document a reader would take is a guess; one file holds one config.
    diag.Add("", LineOf(docs[1]),
             "the file holds " + std::to_string(docs.size()) +
                 " YAML documents (separated by '---'); a config is one document");
  }
  if (doc.IsDefined() && !doc.IsNull() && !doc.IsMap()) {
    diag.Add(
        "", LineOf(doc),
        "expected a map of sections (source, format, window, sinks, ...), got " + Describe(doc));
    result.errors = diag.TakeSorted();
    return result;
  }
  try {
    MapReader root(&diag, doc, "", 1);
    Config& c = result.config;
    ReadSource(root, &c.source);
    ReadFormat(root, &c.format);
    ReadWindow(root, &c.window);
    ReadSinks(root, &diag, &c.sinks);
    ReadDeadLetter(root, &c.dead_letter);
    ReadMetrics(root, &c.metrics);
    ReadLive(root, &c.live);
    ReadState(root, &c.state);
    ReadPipeline(root, &c.pipeline);
    ReadLog(root, &c.log);
    root.Finish();
    FillDefaults(&c);
  } catch (const YAML::Exception& e) {
    // The reader checks node kinds before every access, so this is a bug, not bad input;
    // it still becomes an error rather than a crash.
    diag.Add("", e.mark.line >= 0 ? e.mark.line + 1 : 0,
             std::string("internal error: ") + e.what());
  }
  result.lines = diag.lines();
  result.errors = diag.TakeSorted();
  return result;
}

LoadResult LoadConfigFile(const std::string& path, const EnvLookup& env) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    LoadResult result;
    result.errors.push_back({"", 0, std::string("cannot read the file: ") + std::strerror(errno)});
    return result;
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    LoadResult result;
    result.errors.push_back({"", 0, std::string("cannot read the file: ") + std::strerror(errno)});
    return result;
  }
  return LoadConfigText(text.str(), env);
}

std::string Summary(const Config& c) {
  std::string out = "ok: ";
  out += Name(c.source.type);
  out += " source (";
  if (c.source.type == SourceType::kKafka) {
    out += Plural(c.source.kafka.topics.size(), "topic") + ", " +
           Plural(static_cast<size_t>(c.source.kafka.consumer_threads), "thread");
  } else {
    out += Plural(c.source.file.paths.size(), "path");
  }
  out += "), ";
  out += Name(c.format.type);
  out += " ";
  out += Name(c.format.counters);
  out += ", ";
  out += Name(c.window.type);
  out += ' ';
  out += FormatDuration(c.window.size);
  out += " windows";
  if (c.window.type == WindowType::kHopping) {
    out += " sliding ";
    out += FormatDuration(c.window.EffectiveSlide());
  }
  out += ", " + Plural(c.sinks.size(), "sink") + " (";
  for (size_t i = 0; i < c.sinks.size(); ++i) {
    out += (i > 0 ? ", " : "");
    out += Name(c.sinks[i].type);
  }
  out += ")";
  return out;
}

}  // namespace turnstiled::config
