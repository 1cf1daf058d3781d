// The Kafka sink and the Kafka dead letter against librdkafka's in-process mock cluster.
//
// The mock speaks the transaction protocol (InitProducerId, AddPartitionsToTxn, EndTxn) but
// writes no commit or abort markers, so these tests check what the sink sends and skips, not
// what a read_committed reader would hide (tests/integration/test_kafka_sink.py has the
// end-to-end checks).
#include "sink/kafka_sink.h"

#include <doctest/doctest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "sink/kafka_dead_letter.h"
#include "sink/kafka_poll.h"

namespace turnstiled::sink {
namespace {

using std::chrono::milliseconds;

constexpr int64_t kHour = int64_t{3600} * 1000;
constexpr int64_t kJan6 = 1704499200000;  // 2024-01-06T00:00:00Z

class MockCluster {
 public:
  MockCluster() {
    char errstr[256];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof errstr);
    carrier_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    cluster_ = rd_kafka_mock_cluster_new(carrier_, 1);
    bootstrap_ = rd_kafka_mock_cluster_bootstraps(cluster_);
  }
  ~MockCluster() {
    rd_kafka_mock_cluster_destroy(cluster_);
    rd_kafka_destroy(carrier_);
  }
  void CreateTopic(const std::string& topic, int partitions) {
    REQUIRE(rd_kafka_mock_topic_create(cluster_, topic.c_str(), partitions, 1) ==
            RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  rd_kafka_mock_cluster_t* get() { return cluster_; }
  const std::string& bootstrap() const { return bootstrap_; }

 private:
  rd_kafka_t* carrier_;
  rd_kafka_mock_cluster_t* cluster_;
  std::string bootstrap_;
};

struct Message {
  std::string key;
  std::string value;
  std::map<std::string, std::string> headers;
};

// Every message of `topic`, read from the beginning of each of its partitions to the end.
std::vector<Message> ReadTopic(const std::string& bootstrap, const std::string& topic,
                               int partitions) {
  char errstr[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), errstr, sizeof errstr);
  rd_kafka_conf_set(conf, "group.id", "test-reader", errstr, sizeof errstr);
  rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, sizeof errstr);
  rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof errstr);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(parts, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_assign(rk, parts);
  rd_kafka_topic_partition_list_destroy(parts);
  std::vector<Message> out;
  int at_end = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (at_end < partitions && std::chrono::steady_clock::now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      ++at_end;
    } else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      Message msg;
      if (m->key != nullptr) msg.key.assign(static_cast<const char*>(m->key), m->key_len);
      if (m->payload != nullptr) msg.value.assign(static_cast<const char*>(m->payload), m->len);
      rd_kafka_headers_t* hdrs = nullptr;
      if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char* name;
        const void* val;
        size_t size;
        for (size_t i = 0;
             rd_kafka_header_get_all(hdrs, i, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
             ++i) {
          msg.headers[name] =
              val == nullptr ? "" : std::string(static_cast<const char*>(val), size);
        }
      }
      out.push_back(std::move(msg));
    }
    rd_kafka_message_destroy(m);
  }
  CHECK(at_end == partitions);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return out;
}

window::WindowRow Row(const std::string& station, int64_t start, const std::string& source,
                      bool final = true, int64_t entries = 10) {
  window::WindowRow r;
  r.station = station;
  r.window_start_ms = start;
  r.window_end_ms = start + 4 * kHour;
  r.entries = entries;
  r.exits = 7;
  r.events = 3;
  r.final = final;
  r.source = source;
  return r;
}

config::SinkConfig SinkConfig(const MockCluster& mock, bool transactional = true) {
  config::SinkConfig c;
  c.name = "results";
  c.type = config::SinkType::kKafka;
  c.bootstrap_servers = mock.bootstrap();
  c.topic = "results";
  c.transactional = transactional;
  c.properties = {{"log_level", "3"}};
  return c;
}

std::unique_ptr<KafkaSink> OpenSink(const config::SinkConfig& c) {
  auto sink = KafkaSink::Create(c, milliseconds(5000));
  REQUIRE(sink.ok());
  const base::Status s = sink.value()->Open();
  INFO(s.ToString());
  REQUIRE(s.ok());
  return std::move(sink).value();
}

TEST_CASE("a row's message value is one JSON object with the seven columns") {
  std::string out;
  window::WindowRow row = Row("59 \"ST\"", kJan6 + 4 * kHour, "in-0");
  KafkaSink::AppendValue(row, &out);
  CHECK(out ==
        "{\"station\":\"59 \\\"ST\\\"\",\"window_start\":\"2024-01-06T04:00:00Z\","
        "\"window_end\":\"2024-01-06T08:00:00Z\",\"entries\":10,\"exits\":7,\"events\":3,"
        "\"final\":true}");
  out.clear();
  row.final = false;
  row.window_start_ms += 1;
  KafkaSink::AppendValue(row, &out);
  CHECK(out.find("\"window_start\":\"2024-01-06T04:00:00.001Z\"") != std::string::npos);
  CHECK(out.ends_with(",\"final\":false}"));
}

TEST_CASE("an unknown librdkafka property is refused when the sink is made, before connecting") {
  config::SinkConfig c;
  c.name = "results";
  c.type = config::SinkType::kKafka;
  c.bootstrap_servers = "127.0.0.1:1";
  c.topic = "results";
  c.properties = {{"no.such.property", "1"}};
  auto sink = MakeKafkaSink(c);
  REQUIRE_FALSE(sink.ok());
  CHECK(sink.status().code() == base::Code::kInvalidArgument);
  CHECK(sink.status().message() ==
        "sink 'results': property no.such.property: No such configuration property: "
        "\"no.such.property\"");
  c.properties = {{"transactional.id", "mine"}};
  c.transactional = false;
  auto refused = MakeKafkaSink(c);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().message() ==
        "sink 'results': properties set transactional.id but transactional is false; remove one");
}

std::string DefaultTransactionalId() {
  char host[256] = "localhost";
  if (::gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "localhost");
  host[sizeof host - 1] = '\0';
  return std::string("turnstiled-") + host + "-results-results";
}

TEST_CASE("the transactional.id is derived from the host, sink and topic unless set") {
  MockCluster mock;
  config::SinkConfig c = SinkConfig(mock);
  auto a = KafkaSink::Create(c);
  REQUIRE(a.ok());
  CHECK(a.value()->transactional_id() == DefaultTransactionalId());
  CHECK(a.value()->progress_topic() == "results.progress");
  c.properties["transactional.id"] = "instance-7";
  auto b = KafkaSink::Create(c);
  REQUIRE(b.ok());
  CHECK(b.value()->transactional_id() == "instance-7");
}

TEST_CASE("a transactional flush writes every row and the highest final window per partition") {
  MockCluster mock;
  mock.CreateTopic("results", 3);
  mock.CreateTopic("results.progress", 1);
  auto sink = OpenSink(SinkConfig(mock));
  const std::vector<window::WindowRow> rows = {
      Row("A", kJan6, "in-0"), Row("B", kJan6, "in-0"), Row("A", kJan6 + 4 * kHour, "in-0"),
      Row("C", kJan6, "in-1"), Row("D", kJan6 + 8 * kHour, "in-1", /*final=*/false)};
  REQUIRE(sink->Write(rows).ok());
  REQUIRE(sink->Flush().ok());
  CHECK(sink->EmittedThrough("in-0") == kJan6 + 8 * kHour);
  CHECK(sink->EmittedThrough("in-1") == kJan6 + 4 * kHour);  // update rows do not count
  CHECK(sink->EmittedThrough("in-2") == INT64_MIN);
  const auto results = ReadTopic(mock.bootstrap(), "results", 3);
  CHECK(results.size() == rows.size());
  std::map<std::string, int> by_station;
  uint64_t bytes = 0;
  for (const auto& m : results) {
    ++by_station[m.key];
    bytes += m.key.size() + m.value.size();
    CHECK(m.value.starts_with("{\"station\":\"" + m.key + "\""));
  }
  CHECK(by_station == std::map<std::string, int>{{"A", 2}, {"B", 1}, {"C", 1}, {"D", 1}});
  CHECK(sink->BytesWritten() == bytes);
  std::map<std::string, std::string> progress;
  for (const auto& m : ReadTopic(mock.bootstrap(), "results.progress", 1)) {
    progress[m.key] = m.value;
  }
  CHECK(progress ==
        std::map<std::string, std::string>{{"in-0", std::to_string(kJan6 + 8 * kHour)},
                                           {"in-1", std::to_string(kJan6 + 4 * kHour)}});
  CHECK(sink->Flush().ok());  // nothing buffered: no transaction
  CHECK(sink->Close().ok());
}

TEST_CASE("a restarted sink skips final rows an earlier run committed, and nothing else") {
  MockCluster mock;
  mock.CreateTopic("results", 2);
  mock.CreateTopic("results.progress", 1);
  const config::SinkConfig c = SinkConfig(mock);
  {
    auto first = OpenSink(c);
    REQUIRE(first->Write(std::vector{Row("A", kJan6, "in-0"), Row("B", kJan6, "in-1")}).ok());
    REQUIRE(first->Flush().ok());
    // Killed before its next flush: the rows it holds were never committed.
    REQUIRE(first->Write(std::vector{Row("A", kJan6 + 4 * kHour, "in-0")}).ok());
  }
  auto second = OpenSink(c);
  CHECK(second->EmittedThrough("in-0") == kJan6 + 4 * kHour);
  CHECK(second->EmittedThrough("in-1") == kJan6 + 4 * kHour);
  // The restored checkpoint emits the same windows again, and then new ones.
  REQUIRE(second
              ->Write(std::vector{Row("A", kJan6, "in-0"), Row("B", kJan6, "in-1"),
                                  Row("A", kJan6 + 4 * kHour, "in-0"),
                                  Row("B", kJan6, "in-1", /*final=*/false),  // updates: kept
                                  Row("F", kJan6, "")})                      // a file source
              .ok());
  REQUIRE(second->Flush().ok());
  CHECK(second->skipped_rows() == 2);
  CHECK(second->EmittedThrough("in-0") == kJan6 + 8 * kHour);
  const auto results = ReadTopic(mock.bootstrap(), "results", 2);
  std::map<std::string, int> by_key;
  for (const auto& m : results) ++by_key[m.key + (m.value.ends_with("true}") ? "" : " update")];
  CHECK(by_key == std::map<std::string, int>{{"A", 2}, {"B", 1}, {"B update", 1}, {"F", 1}});
}

TEST_CASE("a partition first seen after open is looked up in the progress topic") {
  MockCluster mock;
  mock.CreateTopic("results", 1);
  mock.CreateTopic("results.progress", 1);
  config::SinkConfig a_config = SinkConfig(mock);
  config::SinkConfig b_config = SinkConfig(mock);
  b_config.properties["transactional.id"] = "instance-b";
  auto a = OpenSink(a_config);
  auto b = OpenSink(b_config);  // another instance of the group
  REQUIRE(b->Write(std::vector{Row("Z", kJan6, "in-5")}).ok());
  REQUIRE(b->Flush().ok());
  // in-5 moves to instance a, which restores a snapshot taken before b's last commit.
  REQUIRE(a->Write(std::vector{Row("Z", kJan6, "in-5"), Row("Z", kJan6 + 4 * kHour, "in-5")}).ok());
  REQUIRE(a->Flush().ok());
  CHECK(a->skipped_rows() == 1);
  CHECK(ReadTopic(mock.bootstrap(), "results", 1).size() == 2);
}

TEST_CASE("with the broker down a flush is retryable and keeps its rows; later they go once") {
  MockCluster mock;
  mock.CreateTopic("results", 1);
  mock.CreateTopic("results.progress", 1);
  auto created = KafkaSink::Create(SinkConfig(mock), milliseconds(1500));
  REQUIRE(created.ok());
  auto& sink = created.value();
  REQUIRE(sink->Open().ok());
  rd_kafka_mock_broker_set_down(mock.get(), 1);
  REQUIRE(sink->Write(std::vector{Row("A", kJan6, "in-0"), Row("B", kJan6, "in-0")}).ok());
  const base::Status down = sink->Flush();
  CHECK(down.IsRetryable());
  CHECK(down.message().starts_with("kafka sink 'results' (topic results): "));
  rd_kafka_mock_broker_set_up(mock.get(), 1);
  base::Status up = down;
  for (int i = 0; i < 20 && !up.ok(); ++i) up = sink->Flush();
  CHECK(up.ok());
  CHECK(ReadTopic(mock.bootstrap(), "results", 1).size() == 2);
  CHECK(sink->EmittedThrough("in-0") == kJan6 + 4 * kHour);
}

TEST_CASE("a topic the brokers refuse to authorize is a permanent error") {
  MockCluster mock;
  mock.CreateTopic("results", 1);
  mock.CreateTopic("results.progress", 1);
  rd_kafka_mock_topic_set_error(mock.get(), "results",
                                RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
  auto sink = KafkaSink::Create(SinkConfig(mock), milliseconds(3000));
  REQUIRE(sink.ok());
  const base::Status s = sink.value()->Open();
  CHECK_FALSE(s.ok());
  CHECK_FALSE(s.IsRetryable());
  CHECK(s.message().find("TOPIC_AUTHORIZATION_FAILED") != std::string::npos);
}

TEST_CASE("a produce error the broker calls permanent aborts the transaction and is permanent") {
  MockCluster mock;
  mock.CreateTopic("results", 1);
  mock.CreateTopic("results.progress", 1);
  auto sink = OpenSink(SinkConfig(mock));
  rd_kafka_mock_push_request_errors(mock.get(), /*Produce*/ 0, 1,
                                    RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
  REQUIRE(sink->Write(std::vector{Row("A", kJan6, "in-0")}).ok());
  const base::Status s = sink->Flush();
  INFO(s.ToString());
  CHECK_FALSE(s.ok());
  CHECK_FALSE(s.IsRetryable());
  CHECK(s.message().find("MSG_SIZE_TOO_LARGE") != std::string::npos);
  CHECK(sink->EmittedThrough("in-0") == INT64_MIN);
}

TEST_CASE("a producer fenced by another with the same transactional.id fails for good") {
  // The mock cluster gives every InitProducerId a new producer id instead of bumping the epoch,
  // so it never fences by itself: it is told to answer EndTxn as a broker would.
  MockCluster mock;
  mock.CreateTopic("results", 1);
  mock.CreateTopic("results.progress", 1);
  auto sink = OpenSink(SinkConfig(mock));
  rd_kafka_mock_push_request_errors(mock.get(), /*EndTxn*/ 26, 1,
                                    RD_KAFKA_RESP_ERR_PRODUCER_FENCED);
  REQUIRE(sink->Write(std::vector{Row("A", kJan6, "in-0")}).ok());
  const base::Status s = sink->Flush();
  INFO(s.ToString());
  CHECK(s.code() == base::Code::kInvalidArgument);
  CHECK(s.message().find("the producer was fenced: another producer started with "
                         "transactional.id '" +
                         DefaultTransactionalId() + "'") != std::string::npos);
  CHECK(sink->EmittedThrough("in-0") == INT64_MIN);
}

TEST_CASE("transactional: false delivers every row with the idempotent producer") {
  MockCluster mock;
  mock.CreateTopic("results", 2);
  auto sink = OpenSink(SinkConfig(mock, /*transactional=*/false));
  std::vector<window::WindowRow> rows;
  for (int i = 0; i < 500; ++i) rows.push_back(Row(std::to_string(i) + " ST", kJan6, "in-0"));
  REQUIRE(sink->Write(rows).ok());
  REQUIRE(sink->Flush().ok());
  const auto results = ReadTopic(mock.bootstrap(), "results", 2);
  CHECK(results.size() == rows.size());
  uint64_t bytes = 0;
  for (const auto& m : results) bytes += m.key.size() + m.value.size();
  CHECK(sink->BytesWritten() == bytes);
  CHECK(sink->skipped_rows() == 0);
}

config::DeadLetterConfig DeadLetterConfig(const MockCluster& mock) {
  config::DeadLetterConfig c;
  c.enabled = true;
  c.type = config::SinkType::kKafka;
  c.bootstrap_servers = mock.bootstrap();
  c.topic = "dead";
  c.max_record_bytes = 16;
  return c;
}

TEST_CASE("the kafka dead letter sends the raw bytes with where and why in headers") {
  MockCluster mock;
  mock.CreateTopic("dead", 1);
  auto dl = KafkaDeadLetter::Create(DeadLetterConfig(mock));
  REQUIRE(dl.ok());
  dl.value()->Write({"bad_field_count", "turnstile-stream", 3, 1234, INT64_MIN, "garbage"});
  dl.value()->Write({"late", "turnstile-stream", 4, 99, kJan6 + 4 * kHour, "0123456789abcdefTAIL"});
  REQUIRE(dl.value()->Flush().ok());
  const auto msgs = ReadTopic(mock.bootstrap(), "dead", 1);
  REQUIRE(msgs.size() == 2);
  CHECK(msgs[0].value == "garbage");
  CHECK(msgs[0].headers == std::map<std::string, std::string>{{"reason", "bad_field_count"},
                                                              {"topic", "turnstile-stream"},
                                                              {"partition", "3"},
                                                              {"offset", "1234"}});
  CHECK(msgs[1].value == "0123456789abcdef");
  CHECK(msgs[1].headers ==
        std::map<std::string, std::string>{{"reason", "late"},
                                           {"topic", "turnstile-stream"},
                                           {"partition", "4"},
                                           {"offset", "99"},
                                           {"event_time", "2024-01-06T04:00:00Z"},
                                           {"raw_bytes", "20"},
                                           {"raw_truncated", "true"}});
  CHECK(dl.value()->delivered() == 2);
}

TEST_CASE("the kafka dead letter takes records from many threads at once") {
  MockCluster mock;
  mock.CreateTopic("dead", 2);
  auto dl = KafkaDeadLetter::Create(DeadLetterConfig(mock));
  REQUIRE(dl.ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 250; ++i) {
        dl.value()->Write({"bad_field_count", "in", t, i, INT64_MIN, "x"});
      }
    });
  }
  for (auto& t : threads) t.join();
  REQUIRE(dl.value()->Flush().ok());
  CHECK(dl.value()->delivered() == 1000);
  CHECK(ReadTopic(mock.bootstrap(), "dead", 2).size() == 1000);
}

TEST_CASE("a kafka dead letter that cannot deliver says so when flushed") {
  MockCluster mock;
  mock.CreateTopic("dead", 1);
  auto dl = KafkaDeadLetter::Create(DeadLetterConfig(mock), milliseconds(1000));
  REQUIRE(dl.ok());
  rd_kafka_mock_broker_set_down(mock.get(), 1);
  dl.value()->Write({"late", "in", 0, 1, INT64_MIN, "x"});
  const base::Status s = dl.value()->Flush();
  CHECK(s.IsRetryable());
  CHECK(s.message() ==
        "dead letter (kafka topic dead): 1 messages still undelivered after 1000 ms");
  rd_kafka_mock_broker_set_up(mock.get(), 1);
  base::Status later = s;
  for (int i = 0; i < 20 && !later.ok(); ++i) later = dl.value()->Flush();
  CHECK(later.ok());
}

TEST_CASE("a poll returns the messages that have arrived without waiting out its timeout") {
  MockCluster cluster;
  cluster.CreateTopic("poll", 1);
  char errstr[256];
  rd_kafka_conf_t* pconf = rd_kafka_conf_new();
  rd_kafka_conf_set(pconf, "bootstrap.servers", cluster.bootstrap().c_str(), errstr, sizeof errstr);
  rd_kafka_conf_set(pconf, "log_level", "0", errstr, sizeof errstr);
  rd_kafka_t* producer = rd_kafka_new(RD_KAFKA_PRODUCER, pconf, errstr, sizeof errstr);
  REQUIRE(producer != nullptr);
  for (const char* value : {"a", "b", "c"}) {
    REQUIRE(rd_kafka_producev(producer, RD_KAFKA_V_TOPIC("poll"),
                              RD_KAFKA_V_VALUE(const_cast<char*>(value), 1),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  REQUIRE(rd_kafka_flush(producer, 20000) == RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_destroy(producer);

  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", cluster.bootstrap().c_str(), errstr, sizeof errstr);
  rd_kafka_conf_set(conf, "group.id", "test-poll", errstr, sizeof errstr);
  rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof errstr);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  REQUIRE(rk != nullptr);
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(parts, "poll", 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_assign(rk, parts);
  rd_kafka_topic_partition_list_destroy(parts);
  rd_kafka_queue_t* queue = rd_kafka_queue_get_consumer(rk);

  // A batch call asked for 2,048 messages waits out its timeout when fewer come: these three
  // would take a minute. TakeMessages hands them over as they arrive.
  constexpr int kTimeoutMs = 60000;
  std::vector<rd_kafka_message_t*> msgs(2048);
  std::string got;
  const auto started = std::chrono::steady_clock::now();
  while (got.size() < 3 && std::chrono::steady_clock::now() - started < milliseconds(kTimeoutMs)) {
    const ssize_t n = TakeMessages(queue, kTimeoutMs, &msgs);
    for (ssize_t i = 0; i < n; ++i) {
      rd_kafka_message_t* m = msgs[static_cast<size_t>(i)];
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
        got.append(static_cast<const char*>(m->payload), m->len);
      rd_kafka_message_destroy(m);
    }
  }
  CHECK(got == "abc");
  // Far below the timeout, and far above anything a busy machine takes to fetch three messages.
  CHECK(std::chrono::steady_clock::now() - started < milliseconds(kTimeoutMs / 2));
  // Nothing more: the call waits out a short timeout and returns none.
  CHECK(TakeMessages(queue, 50, &msgs) == 0);
  rd_kafka_queue_destroy(queue);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
}

}  // namespace
}  // namespace turnstiled::sink
