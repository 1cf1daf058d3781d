// turnstiled_bare_consumer: the reference for the Kafka benchmark (SPEC §9).
//
// It drains every partition of one topic from the beginning and only counts: no decoding, no
// windows, no sinks. Partitions are assigned directly (no consumer group), so the figure is what
// librdkafka alone can fetch and decompress on this machine. It uses the same fetch properties
// as turnstiled's kafka source (src/ingest/kafka_source.cc, BaseConf), so the two runs differ
// only in what happens to a message after librdkafka hands it over.
//
//   turnstiled_bare_consumer -b HOST:PORT -t TOPIC [-X key=value]...
//
// Prints one line of key=value pairs on stdout:
//   count=N bytes=B partitions=P low_nonzero=L seconds=S records_per_second=R
// `seconds` runs from the assignment to the last message below the end offsets read at start;
// `low_nonzero` counts partitions whose first offset is above 0 (the broker deleted data).
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "sink/kafka_poll.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  std::string bootstrap;
  std::string topic;
  std::vector<std::pair<std::string, std::string>> properties;
};

bool ParseArgs(int argc, char** argv, Args* args) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) return false;
    const std::string v = argv[++i];
    if (a == "-b") {
      args->bootstrap = v;
    } else if (a == "-t") {
      args->topic = v;
    } else if (a == "-X") {
      const size_t eq = v.find('=');
      if (eq == std::string::npos) return false;
      args->properties.emplace_back(v.substr(0, eq), v.substr(eq + 1));
    } else {
      return false;
    }
  }
  return !args->bootstrap.empty() && !args->topic.empty();
}

// The kafka source's fetch settings, then the caller's overrides.
rd_kafka_conf_t* MakeConf(const Args& args) {
  const std::vector<std::pair<std::string, std::string>> defaults = {
      {"bootstrap.servers", args.bootstrap},
      {"group.id", "turnstiled-bare-consumer"},  // required by the API; no group is joined
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"enable.partition.eof", "true"},  // as the source; EOF events are skipped
      {"fetch.wait.max.ms", "100"},
      {"fetch.min.bytes", "1"},
      {"queued.min.messages", "200000"},
      {"queued.max.messages.kbytes", "16384"},
      {"fetch.max.bytes", "16777216"},
      {"max.partition.fetch.bytes", "4194304"},
      {"client.id", "turnstiled-bare-consumer"},
  };
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[512];
  auto set = [&](const std::pair<std::string, std::string>& kv) {
    if (rd_kafka_conf_set(conf, kv.first.c_str(), kv.second.c_str(), errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK) {
      std::fprintf(stderr, "bare consumer: %s: %s\n", kv.first.c_str(), errstr);
      return false;
    }
    return true;
  };
  for (const auto& kv : defaults) {
    if (!set(kv)) return nullptr;
  }
  for (const auto& kv : args.properties) {
    if (!set(kv)) return nullptr;
  }
  return conf;
}

// The partitions of `topic` and their end offsets. Retries while the broker is coming up.
bool ReadEnds(rd_kafka_t* rk, const std::string& topic, std::vector<int64_t>* low,
              std::vector<int64_t>* high) {
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t rc = RD_KAFKA_RESP_ERR__TRANSPORT;
  for (int attempt = 0; attempt < 30 && rc != RD_KAFKA_RESP_ERR_NO_ERROR; ++attempt) {
    rc = rd_kafka_metadata(rk, 0, rkt, &md, 2000);
    if (rc == RD_KAFKA_RESP_ERR_NO_ERROR && md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      rc = md->topics[0].err;
      rd_kafka_metadata_destroy(md);
      md = nullptr;
    }
  }
  rd_kafka_topic_destroy(rkt);
  if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
    std::fprintf(stderr, "bare consumer: metadata for %s: %s\n", topic.c_str(),
                 rd_kafka_err2str(rc));
    return false;
  }
  const int n = md->topics[0].partition_cnt;
  low->assign(static_cast<size_t>(n), 0);
  high->assign(static_cast<size_t>(n), 0);
  for (int i = 0; i < n && rc == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
    const int32_t id = md->topics[0].partitions[i].id;
    if (id < 0 || id >= n) {
      rc = RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION;
      break;
    }
    rc = rd_kafka_query_watermark_offsets(rk, topic.c_str(), id, &(*low)[static_cast<size_t>(id)],
                                          &(*high)[static_cast<size_t>(id)], 10000);
  }
  rd_kafka_metadata_destroy(md);
  if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
    std::fprintf(stderr, "bare consumer: end offsets of %s: %s\n", topic.c_str(),
                 rd_kafka_err2str(rc));
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!ParseArgs(argc, argv, &args)) {
    std::fprintf(stderr, "usage: %s -b HOST:PORT -t TOPIC [-X key=value]...\n", argv[0]);
    return 2;
  }
  rd_kafka_conf_t* conf = MakeConf(args);
  if (conf == nullptr) return 2;
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (rk == nullptr) {
    std::fprintf(stderr, "bare consumer: %s\n", errstr);
    return 1;
  }
  rd_kafka_poll_set_consumer(rk);

  std::vector<int64_t> low;
  std::vector<int64_t> high;
  if (!ReadEnds(rk, args.topic, &low, &high)) {
    rd_kafka_destroy(rk);
    return 1;
  }
  const int parts = static_cast<int>(high.size());
  int64_t expected = 0;
  int low_nonzero = 0;
  rd_kafka_topic_partition_list_t* assignment = rd_kafka_topic_partition_list_new(parts);
  std::vector<int64_t> next(static_cast<size_t>(parts), 0);
  int remaining = 0;
  for (int p = 0; p < parts; ++p) {
    const auto i = static_cast<size_t>(p);
    expected += high[i] - low[i];
    if (low[i] > 0) ++low_nonzero;
    next[i] = low[i];
    if (high[i] > low[i]) ++remaining;
    rd_kafka_topic_partition_list_add(assignment, args.topic.c_str(), p)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  }

  const auto start = Clock::now();
  const rd_kafka_resp_err_t rc = rd_kafka_assign(rk, assignment);
  rd_kafka_topic_partition_list_destroy(assignment);
  if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
    std::fprintf(stderr, "bare consumer: assign: %s\n", rd_kafka_err2str(rc));
    rd_kafka_destroy(rk);
    return 1;
  }
  rd_kafka_queue_t* queue = rd_kafka_queue_get_consumer(rk);
  std::vector<rd_kafka_message_t*> msgs(2048);  // the kafka source's poll batch
  int64_t count = 0;
  int64_t bytes = 0;
  auto last_progress = start;
  while (remaining > 0) {
    // The kafka source's poll: what has arrived, waiting only while nothing has.
    const ssize_t n = turnstiled::sink::TakeMessages(queue, 100, &msgs);
    const auto now = Clock::now();
    if (n > 0) last_progress = now;
    for (ssize_t k = 0; k < n; ++k) {
      rd_kafka_message_t* m = msgs[static_cast<size_t>(k)];
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && m->partition >= 0 && m->partition < parts) {
        const auto i = static_cast<size_t>(m->partition);
        ++count;
        bytes += static_cast<int64_t>(m->len);
        if (next[i] < high[i] && m->offset + 1 >= high[i]) --remaining;
        next[i] = m->offset + 1;
      } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR &&
                 m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        std::fprintf(stderr, "bare consumer: %s\n", rd_kafka_message_errstr(m));
      }
      rd_kafka_message_destroy(m);
    }
    if (now - last_progress > std::chrono::seconds(30)) {
      std::fprintf(stderr, "bare consumer: no message for 30 s; giving up\n");
      break;
    }
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  rd_kafka_queue_destroy(queue);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);

  std::printf(
      "count=%lld expected=%lld bytes=%lld partitions=%d low_nonzero=%d seconds=%.6f "
      "records_per_second=%.0f\n",
      static_cast<long long>(count), static_cast<long long>(expected),
      static_cast<long long>(bytes), parts, low_nonzero, seconds,
      seconds > 0 ? static_cast<double>(count) / seconds : 0.0);
  return remaining == 0 ? 0 : 1;
}
