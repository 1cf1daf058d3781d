#include "config/loader.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "config/env.h"

using namespace turnstiled::config;
using turnstiled::base::kHour;
using turnstiled::base::kMinute;
using turnstiled::base::kSecond;

namespace {

EnvLookup FakeEnv(std::map<std::string, std::string> vars = {}) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

// Every error of `yaml`, formatted as `validate` prints it.
std::vector<std::string> Errors(const std::string& yaml, const EnvLookup& env = FakeEnv()) {
  std::vector<std::string> out;
  for (const ConfigError& e : LoadConfigText(yaml, env).errors) out.push_back(e.Format("c.yaml"));
  return out;
}

using Lines = std::vector<std::string>;

// A valid config to which each test adds the lines it is about.
const char* kSinks = "sinks:\n  - {name: out, type: stdout}\n";

}  // namespace

TEST_CASE("a config with only a sink takes every default written in config.h") {
  const LoadResult r = LoadConfigText(kSinks, FakeEnv());
  REQUIRE(r.ok());
  const Config& c = r.config;
  CHECK(c.source.type == SourceType::kKafka);
  CHECK(c.source.kafka.bootstrap_servers == "127.0.0.1:9092");
  CHECK(c.source.kafka.topics == std::vector<std::string>{"turnstile-stream"});
  CHECK(c.source.kafka.consumer_threads == 2);
  CHECK(c.format.type == FormatType::kMtaCsv);
  CHECK(c.format.timezone == "UTC");
  CHECK(c.format.max_delta == 10000);
  CHECK(c.window.type == WindowType::kTumbling);
  CHECK(c.window.size == 4 * kHour);
  CHECK(c.window.EffectiveSlide() == 4 * kHour);
  CHECK(c.window.allowed_lateness == kHour);
  CHECK(c.window.idle_timeout == 30 * kSecond);
  CHECK_FALSE(c.dead_letter.enabled);
  CHECK(c.metrics.enabled);
  CHECK(c.metrics.listen == "127.0.0.1:9464");
  CHECK(c.state.checkpoint_interval == 10 * kSecond);
  REQUIRE(c.sinks.size() == 1);
  CHECK(c.sinks[0].name == "out");
  CHECK(c.sinks[0].type == SinkType::kStdout);
  CHECK(Summary(c) ==
        "ok: kafka source (1 topic, 2 threads), mta-csv cumulative, tumbling 4h windows, 1 sink "
        "(stdout)");
}

TEST_CASE("the SPEC's example config loads into the structs key by key") {
  const std::string yaml = R"(source:
  type: kafka
  kafka:
    bootstrap_servers: ${KAFKA_BOOTSTRAP:-127.0.0.1:9092}
    topics: [turnstile-stream, other]
    group_id: g1
    start_offset: latest
    consumer_threads: 3
    properties: {fetch.min.bytes: 1024, enable.idempotence: true, client.id: x}
format:
  type: json
  timezone: America/New_York
  counters: delta
  max_delta: 0
  fields: {station: st, time: ts}
window:
  type: hopping
  size: 1h
  slide: 15m
  offset: 5m
  allowed_lateness: 30m
  idle_timeout: 10s
  max_future: 2d
  emit: update
  update_interval: 500ms
sinks:
  - {name: lake, type: file, path: out/lake, format: jsonl, compression: none}
  - {name: warehouse, type: postgres, dsn: "${PG_DSN}", table: public.station_window}
  - {name: results, type: kafka, topic: results}
dead_letter: {type: file, path: out/dead-letter}
metrics: {listen: 0.0.0.0:9000}
state: {dir: /tmp/st, checkpoint_interval: 1m}
pipeline: {shards: 4, queue_capacity: 8, batch_records: 100, shutdown_timeout: 5s}
)";
  const LoadResult r = LoadConfigText(yaml, FakeEnv({{"PG_DSN", "host=db"}}));
  REQUIRE(r.errors.empty());
  const Config& c = r.config;
  CHECK(c.source.kafka.topics == std::vector<std::string>{"turnstile-stream", "other"});
  CHECK(c.source.kafka.group_id == "g1");
  CHECK(c.source.kafka.start_offset == StartOffset::kLatest);
  CHECK(c.source.kafka.consumer_threads == 3);
  CHECK(c.source.kafka.properties ==
        std::map<std::string, std::string>{
            {"fetch.min.bytes", "1024"}, {"enable.idempotence", "true"}, {"client.id", "x"}});
  CHECK(c.format.type == FormatType::kJson);
  CHECK(c.format.counters == CounterMode::kDelta);
  CHECK(c.format.max_delta == 0);
  CHECK(c.format.fields.station == "st");
  CHECK(c.format.fields.time == "ts");
  CHECK(c.format.fields.device == "device");
  CHECK(c.window.size == kHour);
  CHECK(c.window.slide == 15 * kMinute);
  CHECK(c.window.offset == 5 * kMinute);
  CHECK(c.window.max_future == 48 * kHour);
  CHECK(c.window.emit == EmitMode::kUpdate);
  CHECK(c.window.update_interval == 500);
  REQUIRE(c.sinks.size() == 3);
  CHECK(c.sinks[0].format == FileFormat::kJsonl);
  CHECK(c.sinks[0].compression == Compression::kNone);
  CHECK(c.sinks[1].dsn == "host=db");
  CHECK(c.sinks[1].table == "public.station_window");
  CHECK(c.sinks[2].bootstrap_servers == "127.0.0.1:9092");  // the source's cluster
  CHECK(c.dead_letter.enabled);
  CHECK(c.dead_letter.path == "out/dead-letter");
  CHECK(c.metrics.enabled);
  CHECK(c.metrics.listen == "0.0.0.0:9000");
  CHECK(c.state.dir == "/tmp/st");
  CHECK(c.state.checkpoint_interval == kMinute);
  CHECK(c.pipeline.shards == 4);
  CHECK(c.pipeline.queue_capacity == 8);
  CHECK(c.pipeline.batch_records == 100);
  CHECK(c.pipeline.shutdown_timeout == 5 * kSecond);
  CHECK(Summary(c) ==
        "ok: kafka source (2 topics, 3 threads), json delta, hopping 1h windows sliding 15m, 3 "
        "sinks (file, postgres, kafka)");
}

TEST_CASE("env references expand anywhere in a value, several at a time, with defaults") {
  const EnvLookup env = FakeEnv({{"A", "x"}, {"B", "y"}, {"EMPTY", ""}});
  std::vector<std::string> errors;
  CHECK(ExpandEnv("${A}", env, &errors) == "x");
  CHECK(ExpandEnv("pre/${A}/mid/${B}.post", env, &errors) == "pre/x/mid/y.post");
  CHECK(ExpandEnv("${UNSET:-out}/lake", env, &errors) == "out/lake");
  CHECK(ExpandEnv("${A:-d}", env, &errors) == "x");
  CHECK(ExpandEnv("${EMPTY:-d}", env, &errors) == "d");
  CHECK(ExpandEnv("${UNSET:-}", env, &errors) == "");
  CHECK(ExpandEnv("${UNSET:-a:b}", env, &errors) == "a:b");
  CHECK(ExpandEnv("cost $5 and $${A}", env, &errors) == "cost $5 and ${A}");
  CHECK(errors.empty());
  CHECK(ExpandEnv("a${NOPE}b", env, &errors) == "ab");
  CHECK(ExpandEnv("${1X}", env, &errors) == "");
  CHECK(ExpandEnv("x${A", env, &errors) == "x");
  CHECK(errors == std::vector<std::string>{
                      "undefined variable ${NOPE}; set it in the environment, or give a default: "
                      "${NOPE:-value}",
                      "invalid variable reference '${1X}'; write ${NAME} or ${NAME:-default}, "
                      "where NAME is letters, digits and '_'",
                      "unterminated '${' (no closing '}'); write ${NAME} or ${NAME:-default}"});
}

TEST_CASE("an undefined variable is an error at the value that uses it") {
  const std::string yaml = std::string(kSinks) +
                           "source:\n  kafka:\n    bootstrap_servers: ${BROKER}\n"
                           "    group_id: ${GROUP:-g}-${SUFFIX}\n";
  CHECK(Errors(yaml) ==
        Lines{"c.yaml:5: source.kafka.bootstrap_servers: undefined variable ${BROKER}; set it in "
              "the environment, or give a default: ${BROKER:-value}",
              "c.yaml:6: source.kafka.group_id: undefined variable ${SUFFIX}; set it in the "
              "environment, or give a default: ${SUFFIX:-value}"});
  const LoadResult r = LoadConfigText(yaml, FakeEnv({{"BROKER", "b:1"}, {"SUFFIX", "s"}}));
  REQUIRE(r.ok());
  CHECK(r.config.source.kafka.bootstrap_servers == "b:1");
  CHECK(r.config.source.kafka.group_id == "g-s");
}

TEST_CASE("values read after expansion, so a variable may hold a number or a duration") {
  const std::string yaml = std::string(kSinks) +
                           "window: {size: '${SIZE}'}\nsource: {kafka: {consumer_threads: "
                           "'${N:-4}'}}\n";
  const LoadResult r = LoadConfigText(yaml, FakeEnv({{"SIZE", "1h"}}));
  REQUIRE(r.ok());
  CHECK(r.config.window.size == kHour);
  CHECK(r.config.source.kafka.consumer_threads == 4);
}

TEST_CASE("an unknown key is an error, with a suggestion when a known key is close") {
  CHECK(Errors(std::string(kSinks) + "window:\n  sise: 4h\n  Slide: 1h\n  colour: red\n") ==
        Lines{"c.yaml:4: window.sise: unknown key 'sise'; did you mean 'size'?",
              "c.yaml:5: window.Slide: unknown key 'Slide'; did you mean 'slide'?",
              "c.yaml:6: window.colour: unknown key 'colour'; known keys here: type, size, "
              "slide, offset, allowed_lateness, idle_timeout, max_future, min_event_time, emit, "
              "update_interval"});
  CHECK(Errors(std::string(kSinks) + "windows: {}\n") ==
        Lines{"c.yaml:3: windows: unknown key 'windows'; did you mean 'window'?"});
  CHECK(Errors("sinks:\n  - {name: a, type: stdout, batch-rows: 5}\n") ==
        Lines{"c.yaml:2: sinks[0].batch-rows: unknown key 'batch-rows'; did you mean "
              "'batch_rows'?"});
}

TEST_CASE("a value of the wrong type names what was expected and what was found") {
  const std::string yaml = std::string(kSinks) + R"(source:
  kafka:
    topics: {a: b}
    consumer_threads: two
    group_id: [a]
    properties: [x]
  file:
    paths: one.txt
metrics: {enabled: maybe}
window: []
)";
  CHECK(Errors(yaml) ==
        Lines{"c.yaml:5: source.kafka.topics: expected a list, got a map",
              "c.yaml:6: source.kafka.consumer_threads: expected an integer, got 'two'",
              "c.yaml:7: source.kafka.group_id: expected a string, got a list",
              "c.yaml:8: source.kafka.properties: expected a map of names to values, got a list",
              "c.yaml:10: source.file.paths: expected a list, got 'one.txt'; write [one.txt]",
              "c.yaml:11: metrics.enabled: expected true or false, got 'maybe'",
              "c.yaml:12: window: expected a map, got a list"});
  CHECK(Errors("sinks: {name: a, type: stdout}\n") ==
        Lines{"c.yaml:1: sinks: expected a list of sinks, got a map; start each sink with '- '"});
  CHECK(Errors("- a\n- b\n") ==
        Lines{"c.yaml:1: expected a map of sections (source, format, window, sinks, ...), got a "
              "list"});
}

TEST_CASE("a bad enum value lists the allowed values") {
  CHECK(Errors(std::string(kSinks) +
               "source: {type: files}\nformat: {type: csv, counters: delta}\n") ==
        Lines{"c.yaml:3: source.type: invalid value 'files'; expected one of: kafka, file",
              "c.yaml:4: format.type: invalid value 'csv'; expected one of: mta-csv, seed-csv, "
              "json"});
  CHECK(Errors("sinks:\n  - {name: a, type: s3}\ndead_letter: {type: postgres}\n") ==
        Lines{"c.yaml:2: sinks[0].type: invalid value 's3'; expected one of: file, postgres, "
              "kafka, stdout",
              "c.yaml:3: dead_letter.type: invalid value 'postgres'; expected one of: file, "
              "kafka"});
}

TEST_CASE("a bad duration says how to write one") {
  CHECK(Errors(std::string(kSinks) + "window:\n  size: 4 hours\n  idle_timeout: 30\n") ==
        Lines{"c.yaml:4: window.size: invalid duration '4 hours'; write a whole number and a "
              "unit: 500ms, 30s, 5m, 4h or 1d (parts may be joined: 1h30m)",
              "c.yaml:5: window.idle_timeout: invalid duration '30'; write a whole number and a "
              "unit: 500ms, 30s, 5m, 4h or 1d (parts may be joined: 1h30m)"});
}

TEST_CASE("required keys are reported at the map that lacks them") {
  CHECK(Errors("source:\n  type: file\n") ==
        Lines{"c.yaml:1: sinks: missing required key 'sinks' (at least one sink; without one, "
              "results would go nowhere)",
              "c.yaml:1: source.file.paths: missing required key 'paths' (source.type is file)"});
  CHECK(Errors(R"(sinks:
  - type: file
  - name: w
    type: postgres
  - {name: k, type: kafka}
  - {name: n}
dead_letter: {}
)") == Lines{"c.yaml:2: sinks[0].name: missing required key 'name'",
             "c.yaml:2: sinks[0].path: missing required key 'path' (a file sink writes under it)",
             "c.yaml:3: sinks[1].dsn: missing required key 'dsn' (a postgres sink connects with "
             "it)",
             "c.yaml:5: sinks[2].topic: missing required key 'topic' (a kafka sink writes to it)",
             "c.yaml:6: sinks[3].type: missing required key 'type' (one of: file, postgres, "
             "kafka, stdout)",
             "c.yaml:7: dead_letter.path: missing required key 'path' (dead_letter.type is "
             "file)"});
}

TEST_CASE("the live view's limits are refused out of range, with the range") {
  auto live = [](const std::string& l) { return Errors(std::string(kSinks) + l); };
  CHECK(live("live: {max_clients: 200, buffer_events: 65536, coalesce: 1s}\n").empty());
  CHECK(live("live: {max_clients: 201}\n") ==
        Lines{"c.yaml:3: live.max_clients: must be at most 200"});
  CHECK(live("live: {buffer_events: 1000001}\n") ==
        Lines{"c.yaml:3: live.buffer_events: must be at most 1000000"});
  CHECK(live("live: {coalesce: 5ms}\n") ==
        Lines{"c.yaml:3: live.coalesce: must be between 10ms and 1m"});
}

TEST_CASE("window shapes that cannot work are refused with the reason") {
  auto window = [](const std::string& w) { return Errors(std::string(kSinks) + w); };
  CHECK(window("window: {size: 0s}\n") == Lines{"c.yaml:3: window.size: must be greater than 0"});
  CHECK(window("window: {size: 50d}\n") ==
        Lines{"c.yaml:3: window.size: must be at most 49d, got 50d"});
  CHECK(window("window: {size: 49d}\n").empty());
  CHECK(window("window: {type: hopping, size: 1h}\n") ==
        Lines{"c.yaml:3: window.slide: missing required key 'slide' (window.type is hopping)"});
  CHECK(window("window: {type: hopping, size: 1h, slide: 0s}\n") ==
        Lines{"c.yaml:3: window.slide: must be greater than 0 for hopping windows"});
  CHECK(window("window: {type: hopping, size: 1h, slide: 2h}\n") ==
        Lines{"c.yaml:3: window.slide: must not be larger than window.size (1h): the windows "
              "would leave gaps, and records in a gap would be counted in no window"});
  CHECK(window("window: {type: hopping, size: 1h, slide: 25m}\n") ==
        Lines{"c.yaml:3: window.slide: window.size (1h) must be a whole multiple of the slide "
              "(25m), so that every record falls into the same number of windows (size / "
              "slide)"});
  CHECK(window("window: {type: tumbling, size: 4h, slide: 1h}\n") ==
        Lines{"c.yaml:3: window.slide: tumbling windows slide by their size (4h); remove slide, "
              "or use type: hopping"});
  CHECK(window("window: {size: 4h, offset: 4h}\n") ==
        Lines{"c.yaml:3: window.offset: must be smaller than the slide (4h): window starts are "
              "offset + k * slide"});
  CHECK(window("window: {type: tumbling, size: 4h, slide: 4h}\n").empty());
  CHECK(window("window: {type: hopping, size: 1h, slide: 1h}\n").empty());
}

TEST_CASE("numbers out of range, bad zones and duplicate sink names are refused") {
  const std::string yaml = R"(sinks:
  - {name: lake, type: stdout}
  - {name: lake, type: stdout}
  - {name: "a b", type: stdout}
source: {kafka: {consumer_threads: 0}}
format: {timezone: America/New_Yrok, max_delta: -1}
)";
  CHECK(Errors(yaml) ==
        Lines{"c.yaml:3: sinks[1].name: duplicate sink name 'lake' (also sinks[0]); names must "
              "be unique",
              "c.yaml:4: sinks[2].name: invalid sink name 'a b'; use letters, digits, '_' and '-' "
              "(it labels metrics and logs)",
              "c.yaml:5: source.kafka.consumer_threads: must be at least 1, got 0",
              "c.yaml:6: format.max_delta: must be at least 0, got -1",
              "c.yaml:6: format.timezone: unknown time zone 'America/New_Yrok'; use an IANA name "
              "such as America/New_York, or UTC"});
}

TEST_CASE("a key meant for another sink type is an error") {
  CHECK(Errors("sinks:\n  - {name: a, type: file, path: p, dsn: x}\n") ==
        Lines{"c.yaml:2: sinks[0].dsn: key 'dsn' does not apply to a file sink (it is for "
              "postgres sinks)"});
}

TEST_CASE("a YAML syntax error is one error with its line") {
  CHECK(Errors("sinks:\n  - {name: a, type: stdout\nwindow: {}\n") ==
        Lines{"c.yaml:3: YAML syntax error: end of map flow not found"});
}

TEST_CASE("sections switch themselves on by being present") {
  auto load = [](const std::string& extra) {
    return LoadConfigText(std::string(kSinks) + extra, FakeEnv()).config;
  };
  CHECK(load("dead_letter: {type: kafka, topic: dl}\n").dead_letter.enabled);
  CHECK(load("dead_letter: {type: kafka, topic: dl}\n").dead_letter.bootstrap_servers ==
        "127.0.0.1:9092");
  CHECK_FALSE(load("dead_letter: {enabled: false}\n").dead_letter.enabled);
  CHECK(load("metrics:\n").metrics.enabled);
  CHECK_FALSE(load("metrics: {enabled: false}\n").metrics.enabled);
}

TEST_CASE("every error is reported, in document order") {
  const std::string yaml = R"(source:
  type: file
window:
  type: hopping
  size: 1h
  slide: 7m
  emitt: final
format: {timezone: Mars/Olympus}
sinks:
  - {name: a, type: file}
)";
  CHECK(Errors(yaml) ==
        Lines{"c.yaml:1: source.file.paths: missing required key 'paths' (source.type is file)",
              "c.yaml:6: window.slide: window.size (1h) must be a whole multiple of the slide "
              "(7m), so that every record falls into the same number of windows (size / slide)",
              "c.yaml:7: window.emitt: unknown key 'emitt'; did you mean 'emit'?",
              "c.yaml:8: format.timezone: unknown time zone 'Mars/Olympus'; use an IANA name "
              "such as America/New_York, or UTC",
              "c.yaml:10: sinks[0].path: missing required key 'path' (a file sink writes under "
              "it)"});
}

TEST_CASE("an unreadable file is one error without a line") {
  const LoadResult r = LoadConfigFile("/nonexistent/turnstiled.yaml", FakeEnv());
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].Format("x.yaml") == "x.yaml: cannot read the file: No such file or directory");
}

TEST_CASE("every shipped example config in config/ loads without errors") {
  const char* src = std::getenv("TURNSTILED_SOURCE_DIR");
  REQUIRE_MESSAGE(src != nullptr, "TURNSTILED_SOURCE_DIR is not set (run through ctest)");
  const EnvLookup env = FakeEnv({{"PG_DSN", "host=db user=t"}, {"KAFKA_BOOTSTRAP", "b:9092"}});
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(src) + "/config")) {
    if (entry.path().extension() != ".yaml") continue;
    ++n;
    const LoadResult r = LoadConfigFile(entry.path().string(), env);
    std::string all;
    for (const ConfigError& e : r.errors) all += e.Format(entry.path().string()) + "\n";
    CHECK_MESSAGE(r.ok(), all);
  }
  CHECK(n >= 4);
}

TEST_CASE("a second YAML document is an error, not silently ignored") {
  CHECK(Errors(std::string(kSinks) + "---\nwindow: {size: 1h}\n") ==
        Lines{"c.yaml:4: the file holds 2 YAML documents (separated by '---'); a config is one "
              "document"});
}

TEST_CASE("a listen address is IP:PORT, as the HTTP server binds it") {
  for (const char* good : {"127.0.0.1:9464", "0.0.0.0:0", "[::1]:9464", "[::]:80"}) {
    CHECK_MESSAGE(Errors(std::string(kSinks) + "metrics: {listen: \"" + good + "\"}\n").empty(),
                  good);
  }
  for (const char* bad : {":9464", "localhost:9464", "9464", "1.2.3:80", "256.1.1.1:80",
                          "127.0.0.1:", "127.0.0.1:70000", "[::1:80"}) {
    CHECK_MESSAGE(Errors(std::string(kSinks) + "metrics: {listen: \"" + bad + "\"}\n").size() == 1,
                  bad);
  }
}
