#include "state/changelog.h"

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "base/log.h"
#include "state/snapshot.h"

namespace turnstiled::state {

namespace {

using Clock = std::chrono::steady_clock;

void OnLog(const rd_kafka_t*, int level, const char* facility, const char* text) {
  base::LogLibraryLine(base::FromSyslogLevel(level), "state", facility, text);
}

rd_kafka_conf_t* MakeConf(const std::string& bootstrap,
                          const std::map<std::string, std::string>& props, std::string* err) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set_log_cb(conf, &OnLog);
  char errstr[512];
  auto set = [&](const std::string& k, const std::string& v) {
    if (!err->empty()) return;
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
      *err = "state.changelog_topic: " + k + ": " + errstr;
  };
  set("bootstrap.servers", bootstrap);
  set("client.id", "turnstiled-state");
  for (const auto& [k, v] : props) set(k, v);
  return conf;
}

std::string KeyOf(const std::string& topic, int32_t partition) {
  return topic + "/" + std::to_string(partition);
}

struct Delivery {
  std::atomic<int> pending{0};
  std::atomic<int> failed{0};
  std::string error;  // first failure; written before `failed` is raised
};

void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void*) {
  auto* d = static_cast<Delivery*>(m->_private);
  if (d == nullptr) return;
  if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR && d->failed.load() == 0) {
    d->error = rd_kafka_err2str(m->err);
    d->failed.fetch_add(1);
  }
  d->pending.fetch_sub(1);
}

}  // namespace

Changelog::Changelog(std::string bootstrap, std::string topic,
                     std::map<std::string, std::string> properties, int partitions_hint)
    : bootstrap_(std::move(bootstrap)),
      topic_(std::move(topic)),
      properties_(std::move(properties)),
      partitions_hint_(partitions_hint) {}

Changelog::~Changelog() {
  if (admin_queue_ != nullptr) rd_kafka_queue_destroy(admin_queue_);
  if (producer_ != nullptr) {
    rd_kafka_flush(producer_, 5000);
    rd_kafka_destroy(producer_);
  }
}

base::Status Changelog::Open() {
  std::string err;
  rd_kafka_conf_t* conf = MakeConf(bootstrap_, properties_, &err);
  char errstr[512];
  auto set = [&](const char* k, const char* v) {
    if (err.empty() && rd_kafka_conf_set(conf, k, v, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
      err = std::string("state.changelog_topic: ") + k + ": " + errstr;
  };
  set("acks", "all");
  set("enable.idempotence", "true");
  set("compression.codec", "none");  // snapshots are zstd frames already
  set("message.max.bytes", "100000000");
  set("linger.ms", "0");
  if (!err.empty()) {
    rd_kafka_conf_destroy(conf);
    return base::Status::InvalidArgument(err);
  }
  rd_kafka_conf_set_dr_msg_cb(conf, &OnDelivery);
  producer_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (producer_ == nullptr) return base::Status::InvalidArgument(errstr);
  RequestTopic();
  return {};
}

void Changelog::RequestTopic() {
  // Create the topic, compacted, unless it exists. Asynchronous: a broker that is down, or one
  // that does not answer admin requests (the embedded one), never delays a start or a
  // checkpoint; the topic is then auto-created by the first write.
  char errstr[512];
  rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(topic_.c_str(), std::max(1, partitions_hint_), -1,
                                                  errstr, sizeof errstr);
  if (nt == nullptr) return;
  rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact");
  admin_queue_ = rd_kafka_queue_new(producer_);
  rd_kafka_AdminOptions_t* options =
      rd_kafka_AdminOptions_new(producer_, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_request_timeout(options, 10000, errstr, sizeof errstr);
  rd_kafka_CreateTopics(producer_, &nt, 1, options, admin_queue_);
  rd_kafka_AdminOptions_destroy(options);
  rd_kafka_NewTopic_destroy(nt);
}

void Changelog::PollTopicRequest() {
  if (admin_queue_ == nullptr) return;
  rd_kafka_event_t* ev = rd_kafka_queue_poll(admin_queue_, 0);
  if (ev == nullptr) return;
  const rd_kafka_CreateTopics_result_t* res = rd_kafka_event_CreateTopics_result(ev);
  size_t n = 0;
  const rd_kafka_topic_result_t** topics =
      res != nullptr ? rd_kafka_CreateTopics_result_topics(res, &n) : nullptr;
  if (n == 1) {
    const rd_kafka_resp_err_t err = rd_kafka_topic_result_error(topics[0]);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      base::Log(base::LogLevel::kInfo, "state", "changelog topic created, compacted",
                {{"topic", topic_}, {"partitions", std::to_string(partitions_hint_)}});
    } else if (err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      base::Log(base::LogLevel::kWarn, "state",
                "changelog topic not created; it is auto-created on first write (make it "
                "compacted yourself)",
                {{"topic", topic_}, {"error", rd_kafka_err2str(err)}});
    }
  }
  rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(admin_queue_);
  admin_queue_ = nullptr;
}

int Changelog::Partitions(int timeout_ms) {
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(producer_, topic_.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  int n = 0;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (n <= 0 && Clock::now() < deadline) {
    if (rd_kafka_metadata(producer_, 0, rkt, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
        n = md->topics[0].partition_cnt;
      rd_kafka_metadata_destroy(md);
    }
    if (n <= 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  rd_kafka_topic_destroy(rkt);
  return n;
}

base::Status Changelog::Write(const std::vector<Entry>& entries, int timeout_ms) {
  if (entries.empty()) return {};
  PollTopicRequest();
  const int partitions = Partitions(timeout_ms);
  if (partitions <= 0) return base::Status::Unavailable("changelog topic has no partitions");
  Delivery d;
  for (const Entry& e : entries) {
    const std::string key = KeyOf(e.topic, e.partition);
    d.pending.fetch_add(1);
    const rd_kafka_resp_err_t rc = rd_kafka_producev(
        producer_, RD_KAFKA_V_TOPIC(topic_.c_str()), RD_KAFKA_V_PARTITION(e.partition % partitions),
        RD_KAFKA_V_KEY(key.data(), key.size()),
        RD_KAFKA_V_VALUE(const_cast<char*>(e.bytes->data()), e.bytes->size()),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(&d), RD_KAFKA_V_END);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
      d.pending.fetch_sub(1);
      rd_kafka_flush(producer_, timeout_ms);
      return base::Status::Unavailable("changelog produce: " + std::string(rd_kafka_err2str(rc)));
    }
  }
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (d.pending.load() > 0 && Clock::now() < deadline) rd_kafka_poll(producer_, 50);
  if (d.pending.load() > 0) {
    // `d` must outlive every callback that names it.
    rd_kafka_purge(producer_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    while (d.pending.load() > 0) rd_kafka_poll(producer_, 50);
    return base::Status::Unavailable("changelog write not acknowledged in time");
  }
  if (d.failed.load() > 0) return base::Status::Unavailable("changelog write failed: " + d.error);
  return {};
}

base::Result<std::optional<window::PartitionState>> Changelog::Load(const std::string& topic,
                                                                    int32_t partition,
                                                                    int timeout_ms) {
  const int partitions = Partitions(timeout_ms);
  if (partitions <= 0) return base::Status::Unavailable("changelog topic has no partitions");
  const int32_t cp = partition % partitions;
  std::string err;
  rd_kafka_conf_t* conf = MakeConf(bootstrap_, properties_, &err);
  char errstr[512];
  // A reader of one partition by assign(): it never joins a group or commits, but librdkafka's
  // consumer wants a group id all the same.
  for (const auto& [k, v] : std::map<std::string, std::string>{{"enable.partition.eof", "true"},
                                                               {"enable.auto.commit", "false"},
                                                               {"group.id", topic_ + "-restore"},
                                                               {"auto.offset.reset", "earliest"}}) {
    if (err.empty() &&
        rd_kafka_conf_set(conf, k.c_str(), v.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
      err = errstr;
    }
  }
  if (!err.empty()) {
    rd_kafka_conf_destroy(conf);
    return base::Status::InvalidArgument(err);
  }
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (rk == nullptr) return base::Status::InvalidArgument(errstr);
  int64_t lo = 0;
  int64_t hi = 0;
  rd_kafka_resp_err_t rc =
      rd_kafka_query_watermark_offsets(rk, topic_.c_str(), cp, &lo, &hi, timeout_ms);
  if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_destroy(rk);
    return base::Status::Unavailable("changelog end offset: " + std::string(rd_kafka_err2str(rc)));
  }
  const std::string key = KeyOf(topic, partition);
  // The snapshot with the highest offset, not merely the last written: an instance that lost
  // a partition may still write an older one after the new owner's.
  std::optional<window::PartitionState> newest;
  size_t damaged = 0;
  if (hi > lo) {
    rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, topic_.c_str(), cp)->offset = lo;
    rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    int64_t next = lo;
    while (next < hi && Clock::now() < deadline) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 200);
      if (m == nullptr) continue;
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        next = m->offset + 1;
        if (m->key_len == key.size() &&
            key.compare(0, key.size(), static_cast<const char*>(m->key), m->key_len) == 0) {
          auto decoded =
              DecodeSnapshot(std::string_view(static_cast<const char*>(m->payload), m->len));
          if (!decoded.ok()) {
            ++damaged;
          } else if (!newest || decoded->next_offset > newest->next_offset) {
            newest = std::move(decoded).value();
          }
        }
      } else if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        next = std::max(next, m->offset);
        if (next >= hi) {
          rd_kafka_message_destroy(m);
          break;
        }
      }
      rd_kafka_message_destroy(m);
    }
    if (next < hi) {
      rd_kafka_destroy(rk);
      return base::Status::Unavailable("changelog not read to its end in time");
    }
  }
  rd_kafka_destroy(rk);
  if (damaged > 0) {
    base::Log(base::LogLevel::kError, "state", "damaged changelog snapshots were skipped",
              {{"key", key}, {"count", std::to_string(damaged)}});
  }
  return newest;
}

}  // namespace turnstiled::state
