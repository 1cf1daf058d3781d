#include "sink/kafka_sink.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <cstring>

#include "base/civil_time.h"
#include "base/log.h"
#include "sink/kafka_poll.h"
#include "sink/row_format.h"

namespace turnstiled::sink {

using base::Log;
using base::LogLevel;
using base::Status;
using Clock = std::chrono::steady_clock;

namespace kafka_producer {
namespace {

// librdkafka's own log lines, as structured lines of ours. Called from librdkafka's threads;
// base::Log is safe there.
void OnKafkaLog(const rd_kafka_t*, int level, const char* facility, const char* text) {
  base::LogLibraryLine(base::FromSyslogLevel(level), "kafka-sink", facility, text);
}

bool HoldsSecret(std::string_view key) {
  for (std::string_view word : {"password", "secret", "pem", "ssl.key", "jaas", "oauthbearer"}) {
    if (key.find(word) != std::string_view::npos) return true;
  }
  return false;
}

}  // namespace

base::Result<rd_kafka_conf_t*> NewConf(
    std::string_view what, const std::vector<std::pair<std::string, std::string>>& settings) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set_log_cb(conf, &OnKafkaLog);
  char errstr[512];
  for (const auto& [key, value] : settings) {
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return Status::InvalidArgument(std::string(what) + ": property " + key + ": " +
                                     (HoldsSecret(key) ? "invalid value" : errstr));
    }
  }
  return conf;
}

bool IsPermanent(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:  // an invalid topic name
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_INVALID_REQUIRED_ACKS:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
    case RD_KAFKA_RESP_ERR_INVALID_TRANSACTION_TIMEOUT:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
    case RD_KAFKA_RESP_ERR_INVALID_CONFIG:
    case RD_KAFKA_RESP_ERR__FENCED:
    case RD_KAFKA_RESP_ERR_PRODUCER_FENCED:
    case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH:
    case RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR__NOT_IMPLEMENTED:
      return true;
    default:
      return false;
  }
}

}  // namespace kafka_producer

namespace {

constexpr size_t kConsumeBatch = 1024;

bool IsFenced(rd_kafka_resp_err_t err) {
  return err == RD_KAFKA_RESP_ERR__FENCED || err == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
         err == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH;
}

int Ms(std::chrono::milliseconds d) {
  return static_cast<int>(std::clamp<int64_t>(d.count(), 0, INT_MAX));
}

void AppendInt(int64_t v, std::string* out) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, end);
}

// Connection settings of the sink's `properties` that the progress reader (a consumer) needs
// too: TLS, SASL, sockets. Producer-only properties would make librdkafka warn.
bool IsConnectionProperty(const std::string& key) {
  for (std::string_view prefix : {"security.", "sasl.", "ssl.", "socket.", "broker.", "client.",
                                  "reconnect.", "api.version", "enable.ssl"}) {
    if (key.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

}  // namespace

// Reads the progress topic with a read_committed consumer assigned to all of its partitions
// from the beginning (no group membership, no commits). Values are folded into a map as their
// maximum per key, so records read twice or out of order do no harm.
class KafkaSink::ProgressReader {
 public:
  static base::Result<std::unique_ptr<ProgressReader>> Create(const config::SinkConfig& config,
                                                              const std::string& topic) {
    std::vector<std::pair<std::string, std::string>> settings = {
        {"bootstrap.servers", config.bootstrap_servers},
        {"client.id", "turnstiled"},
        // assign() needs a group id; the reader never joins the group nor commits.
        {"group.id", "turnstiled-progress-reader"},
        {"isolation.level", "read_committed"},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"enable.partition.eof", "true"},
        {"auto.offset.reset", "earliest"},
        {"fetch.wait.max.ms", "100"},
    };
    for (const auto& [key, value] : config.properties) {
      if (IsConnectionProperty(key)) settings.emplace_back(key, value);
    }
    auto conf = kafka_producer::NewConf("sink '" + config.name + "' progress reader", settings);
    if (!conf.ok()) return conf.status();
    char errstr[512];
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, *conf, errstr, sizeof errstr);
    if (rk == nullptr) {
      rd_kafka_conf_destroy(*conf);
      return Status::InvalidArgument("sink '" + config.name + "' progress reader: " + errstr);
    }
    rd_kafka_poll_set_consumer(rk);
    return std::unique_ptr<ProgressReader>(new ProgressReader(topic, rk));
  }

  ~ProgressReader() {
    rd_kafka_queue_destroy(queue_);
    rd_kafka_consumer_close(rk_);
    rd_kafka_destroy(rk_);
  }

  // Reads every record committed before now (up to the last stable offsets) into `out`.
  Status ReadToEnd(std::map<std::string, int64_t>* out, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    if (!assigned_) {
      Status s = Assign(timeout);
      if (!s.ok()) return s;
    }
    // The end offsets now: with read_committed, the last stable offsets. (Unlike
    // rd_kafka_query_watermark_offsets(), offsets_for_times() keeps to its timeout when a
    // broker goes away.)
    std::map<int32_t, int64_t> target;
    rd_kafka_topic_partition_list_t* ends =
        rd_kafka_topic_partition_list_new(static_cast<int>(next_.size()));
    for (const auto& [partition, next] : next_) {
      rd_kafka_topic_partition_list_add(ends, topic_.c_str(), partition)->offset =
          RD_KAFKA_OFFSET_END;  // as a timestamp: "the latest"
    }
    rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk_, ends, Ms(timeout));
    for (int i = 0; i < ends->cnt && err == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
      err = ends->elems[i].err;
      target[ends->elems[i].partition] = ends->elems[i].offset;
    }
    rd_kafka_topic_partition_list_destroy(ends);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return Status::Unavailable("end offsets of " + topic_ + ": " + rd_kafka_err2str(err));
    }
    std::vector<rd_kafka_message_t*> msgs(kConsumeBatch);
    for (;;) {
      const bool done = std::all_of(target.begin(), target.end(),
                                    [&](const auto& t) { return next_[t.first] >= t.second; });
      if (done) return Status::Ok();
      if (Clock::now() > deadline) {
        return Status::Unavailable("reading " + topic_ + " to its end took longer than " +
                                   std::to_string(timeout.count()) + " ms");
      }
      const ssize_t n = TakeMessages(queue_, 100, &msgs);
      for (ssize_t i = 0; i < n; ++i) Handle(msgs[static_cast<size_t>(i)], out);
    }
  }

  // Whether the topic exists.
  base::Result<bool> Exists(std::chrono::milliseconds timeout) {
    const rd_kafka_metadata_t* md = nullptr;
    const rd_kafka_resp_err_t err = Metadata(timeout, &md);
    if (md != nullptr) rd_kafka_metadata_destroy(md);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return true;
    if (err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) return false;
    const std::string text = "metadata for " + topic_ + ": " + rd_kafka_err2str(err);
    return kafka_producer::IsPermanent(err) ? Status::IoError(text) : Status::Unavailable(text);
  }

  // Folds in what has been fetched already, without waiting.
  void Poll(std::map<std::string, int64_t>* out) {
    if (!assigned_) return;
    std::vector<rd_kafka_message_t*> msgs(kConsumeBatch);
    for (;;) {
      const ssize_t n = rd_kafka_consume_batch_queue(queue_, 0, msgs.data(), msgs.size());
      if (n <= 0) return;
      for (ssize_t i = 0; i < n; ++i) Handle(msgs[static_cast<size_t>(i)], out);
    }
  }

 private:
  ProgressReader(std::string topic, rd_kafka_t* rk)
      : topic_(std::move(topic)), rk_(rk), queue_(rd_kafka_queue_get_consumer(rk)) {}

  // The topic's metadata, or the error. A consumer never makes the brokers auto-create it.
  rd_kafka_resp_err_t Metadata(std::chrono::milliseconds timeout, const rd_kafka_metadata_t** md) {
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk_, topic_.c_str(), nullptr);
    *md = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk_, 0, rkt, md, Ms(timeout));
    rd_kafka_topic_destroy(rkt);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      if ((*md)->topic_cnt == 1 && (*md)->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        err = (*md)->topics[0].err;
      } else if ((*md)->topic_cnt != 1 || (*md)->topics[0].partition_cnt == 0) {
        err = RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
      }
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR && *md != nullptr) {
      rd_kafka_metadata_destroy(*md);
      *md = nullptr;
    }
    return err;
  }

  Status Assign(std::chrono::milliseconds timeout) {
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_resp_err_t err = Metadata(timeout, &md);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      const std::string text = "metadata for " + topic_ + ": " + rd_kafka_err2str(err);
      return kafka_producer::IsPermanent(err) ? Status::IoError(text) : Status::Unavailable(text);
    }
    rd_kafka_topic_partition_list_t* parts =
        rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
    for (int i = 0; i < md->topics[0].partition_cnt; ++i) {
      const int32_t id = md->topics[0].partitions[i].id;
      rd_kafka_topic_partition_list_add(parts, topic_.c_str(), id)->offset =
          RD_KAFKA_OFFSET_BEGINNING;
      next_[id] = 0;
    }
    rd_kafka_metadata_destroy(md);
    err = rd_kafka_assign(rk_, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      next_.clear();
      return Status::Unavailable("assign " + topic_ + ": " + rd_kafka_err2str(err));
    }
    assigned_ = true;
    return Status::Ok();
  }

  void Handle(rd_kafka_message_t* m, std::map<std::string, int64_t>* out) {
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      int64_t& next = next_[m->partition];
      next = std::max(next, m->offset);
    } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      Log(LogLevel::kWarn, "sink", "progress topic read error",
          {{"topic", topic_}, {"error", rd_kafka_message_errstr(m)}});
    } else {
      int64_t& next = next_[m->partition];
      next = std::max(next, m->offset + 1);
      const char* value = static_cast<const char*>(m->payload);
      int64_t through = 0;
      if (m->key != nullptr && m->key_len > 0 && value != nullptr &&
          std::from_chars(value, value + m->len, through).ec == std::errc()) {
        const std::string key(static_cast<const char*>(m->key), m->key_len);
        auto [it, inserted] = out->try_emplace(key, through);
        if (!inserted) it->second = std::max(it->second, through);
      }
    }
    rd_kafka_message_destroy(m);
  }

  // Constant after construction.
  const std::string topic_;
  rd_kafka_t* const rk_;
  rd_kafka_queue_t* const queue_;
  // Owned by the writer thread.
  bool assigned_ = false;
  std::map<int32_t, int64_t> next_;  // partition -> the offset read up to
};

base::Result<std::unique_ptr<Sink>> MakeKafkaSink(const config::SinkConfig& config) {
  auto sink = KafkaSink::Create(config);
  if (!sink.ok()) return sink.status();
  return std::unique_ptr<Sink>(std::move(sink).value());
}

base::Result<std::unique_ptr<KafkaSink>> KafkaSink::Create(const config::SinkConfig& config,
                                                           std::chrono::milliseconds timeout) {
  const std::string what = "sink '" + config.name + "'";
  if (config.topic.empty()) return Status::InvalidArgument(what + ": topic must not be empty");
  if (config.bootstrap_servers.empty()) {
    return Status::InvalidArgument(what + ": bootstrap_servers must not be empty");
  }
  // Our defaults first, so that `properties` can override any of them.
  std::vector<std::pair<std::string, std::string>> settings = {
      {"bootstrap.servers", config.bootstrap_servers},
      {"client.id", "turnstiled"},
      // The Java clients' partitioner: a station lands on the same partition from any client.
      {"partitioner", "murmur2_random"},
      {"compression.type", "zstd"},
      {"linger.ms", "5"},
  };
  std::string transactional_id;
  for (const auto& [key, value] : config.properties) {
    settings.emplace_back(key, value);
    if (key == "transactional.id") transactional_id = value;
  }
  if (config.transactional) {
    if (transactional_id.empty()) {
      // Stable across restarts of this instance (a restart fences its own zombie and aborts
      // its open transaction), different between instances of a group on different hosts.
      char host[256] = "localhost";
      if (::gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "localhost");
      host[sizeof host - 1] = '\0';
      transactional_id = std::string("turnstiled-") + host + "-" + config.name + "-" + config.topic;
      settings.emplace_back("transactional.id", transactional_id);
    }
  } else if (!transactional_id.empty()) {
    return Status::InvalidArgument(
        what + ": properties set transactional.id but transactional is false; remove one");
  }
  // Not overridable: the delivery guarantees rest on them.
  settings.emplace_back("enable.idempotence", "true");
  settings.emplace_back("acks", "all");
  auto conf = kafka_producer::NewConf(what, settings);
  if (!conf.ok()) return conf.status();
  return std::unique_ptr<KafkaSink>(new KafkaSink(config, *conf, transactional_id, timeout));
}

KafkaSink::KafkaSink(const config::SinkConfig& config, rd_kafka_conf_t* conf,
                     std::string transactional_id, std::chrono::milliseconds timeout)
    : config_(config),
      conf_(conf),
      transactional_id_(std::move(transactional_id)),
      progress_topic_(config.topic + ".progress"),
      timeout_(timeout) {}

KafkaSink::~KafkaSink() {
  (void)Close();
  rd_kafka_conf_destroy(conf_);
}

std::string KafkaSink::Describe(rd_kafka_resp_err_t err, std::string_view what) const {
  std::string out = "kafka sink '" + config_.name + "' (topic " + config_.topic + "): ";
  out += what;
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    out += ": ";
    out += rd_kafka_err2name(err);
    out += ": ";
    out += rd_kafka_err2str(err);
  }
  return out;
}

namespace {
Status ErrorStatus(rd_kafka_resp_err_t err, std::string message) {
  return kafka_producer::IsPermanent(err) ? Status::IoError(std::move(message))
                                          : Status::Unavailable(std::move(message));
}
}  // namespace

Status KafkaSink::Open() {
  Status s = Connect();
  if (s.ok()) {
    Log(LogLevel::kInfo, "sink", "kafka sink connected",
        {{"sink", config_.name},
         {"topic", config_.topic},
         {"transactional_id", config_.transactional ? transactional_id_ : "-"},
         {"progress_sources", std::to_string(emitted_through_.size())}});
  }
  return s;
}

Status KafkaSink::Connect() {
  if (rk_ == nullptr) {
    rd_kafka_conf_t* conf = rd_kafka_conf_dup(conf_);
    rd_kafka_conf_set_opaque(conf, this);
    rd_kafka_conf_set_dr_msg_cb(conf, &KafkaSink::OnDelivery);
    char errstr[512];
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (rk_ == nullptr) {
      rd_kafka_conf_destroy(conf);
      return Status::InvalidArgument(Describe(RD_KAFKA_RESP_ERR_NO_ERROR, errstr));
    }
    rkt_ = rd_kafka_topic_new(rk_, config_.topic.c_str(), nullptr);
    initialized_ = false;
    progress_read_ = false;
  }
  if (config_.transactional && !initialized_) {
    // Fences every earlier producer with this transactional.id and finishes (commits or
    // aborts) its last transaction, so the progress topic read next is settled.
    if (rd_kafka_error_t* e = rd_kafka_init_transactions(rk_, Ms(timeout_)); e != nullptr) {
      const rd_kafka_resp_err_t code = rd_kafka_error_code(e);
      const bool fatal = rd_kafka_error_is_fatal(e);
      const std::string text = rd_kafka_error_string(e);
      rd_kafka_error_destroy(e);
      if (fatal) return Fatal("init_transactions");
      if (code == RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE) {
        return Status::IoError(
            Describe(code, "the brokers do not support transactions; set transactional: false"));
      }
      return ErrorStatus(code, Describe(code, "init_transactions: " + text));
    }
    initialized_ = true;
  }
  if (config_.transactional && reader_ == nullptr) {
    auto r = ProgressReader::Create(config_, progress_topic_);
    if (!r.ok()) return r.status();
    reader_ = std::move(r).value();
  }
  if (!topics_checked_) {
    Status s = CheckTopic(config_.topic);
    if (s.ok() && config_.transactional) s = EnsureProgressTopic();
    if (!s.ok()) return s;
    topics_checked_ = true;
  }
  if (config_.transactional && progress_rkt_ == nullptr) {
    // Only now: a producer's topic handle makes brokers that auto-create topics create it, with
    // their defaults rather than compacted.
    progress_rkt_ = rd_kafka_topic_new(rk_, progress_topic_.c_str(), nullptr);
  }
  if (config_.transactional && !progress_read_) {
    Status s = reader_->ReadToEnd(&emitted_through_, timeout_);
    if (!s.ok()) return Status(s.code(), Describe(RD_KAFKA_RESP_ERR_NO_ERROR, s.message()));
    progress_read_ = true;
  }
  return Status::Ok();
}

Status KafkaSink::CheckTopic(const std::string& topic) {
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk_, topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk_, 0, rkt, &md, Ms(timeout_));
  rd_kafka_topic_destroy(rkt);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    err = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
    rd_kafka_metadata_destroy(md);
  }
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return Status::Ok();
  if (err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
    return Status::Unavailable(Describe(err, "topic " + topic +
                                                 " does not exist (create it, or let the brokers "
                                                 "auto-create topics)"));
  }
  return ErrorStatus(err, Describe(err, "metadata for topic " + topic));
}

Status KafkaSink::EnsureProgressTopic() {
  auto exists = reader_->Exists(timeout_);
  if (!exists.ok()) {
    return Status(exists.status().code(),
                  Describe(RD_KAFKA_RESP_ERR_NO_ERROR, exists.status().message()));
  }
  if (*exists) return Status::Ok();
  char errstr[512];
  rd_kafka_NewTopic_t* topic =
      rd_kafka_NewTopic_new(progress_topic_.c_str(), 1, -1, errstr, sizeof errstr);
  if (topic == nullptr) {
    return Status::InvalidArgument(Describe(RD_KAFKA_RESP_ERR_NO_ERROR, errstr));
  }
  rd_kafka_NewTopic_set_config(topic, "cleanup.policy", "compact");
  rd_kafka_AdminOptions_t* options = rd_kafka_AdminOptions_new(rk_, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  // Short: a cluster creates a topic in well under a second, and one without a controller (the
  // embedded broker) never answers; the auto-creation fallback below follows.
  const auto wait = std::min<std::chrono::milliseconds>(timeout_, std::chrono::seconds(5));
  rd_kafka_AdminOptions_set_request_timeout(options, Ms(wait), errstr, sizeof errstr);
  rd_kafka_AdminOptions_set_operation_timeout(options, Ms(wait), errstr, sizeof errstr);
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk_);
  rd_kafka_CreateTopics(rk_, &topic, 1, options, queue);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(queue, Ms(wait + std::chrono::seconds(1)));
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__TIMED_OUT;
  std::string text = "no answer";
  if (ev != nullptr) {
    err = rd_kafka_event_error(ev);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      text = rd_kafka_event_error_string(ev);
    } else if (const rd_kafka_CreateTopics_result_t* res = rd_kafka_event_CreateTopics_result(ev);
               res != nullptr) {
      size_t n = 0;
      const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(res, &n);
      if (n > 0) {
        err = rd_kafka_topic_result_error(results[0]);
        if (const char* s = rd_kafka_topic_result_error_string(results[0]); s != nullptr) text = s;
      }
    }
    rd_kafka_event_destroy(ev);
  }
  rd_kafka_queue_destroy(queue);
  rd_kafka_AdminOptions_destroy(options);
  rd_kafka_NewTopic_destroy(topic);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    Log(LogLevel::kInfo, "sink", "progress topic created",
        {{"sink", config_.name}, {"topic", progress_topic_}, {"cleanup_policy", "compact"}});
  } else if (err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
    // Not allowed, no controller, or a broker without the admin API: the producer's metadata
    // request below lets brokers that auto-create topics create it.
    Log(LogLevel::kWarn, "sink",
        "cannot create the progress topic; relying on the brokers to auto-create it (it should "
        "be compacted: cleanup.policy=compact)",
        {{"sink", config_.name},
         {"topic", progress_topic_},
         {"error", rd_kafka_err2name(err)},
         {"reason", text}});
    Status s = CheckTopic(progress_topic_);
    if (!s.ok()) {
      return Status(s.code(),
                    s.message() + "; creating it failed: " + rd_kafka_err2name(err) + ": " + text);
    }
  }
  return CheckTopic(progress_topic_);
}

Status KafkaSink::RefreshProgress() {
  reader_->Poll(&emitted_through_);
  const bool unknown = std::any_of(buffer_.begin(), buffer_.end(), [&](const auto& row) {
    return !row.source.empty() && !emitted_through_.contains(row.source);
  });
  if (!unknown) return Status::Ok();
  // A partition this sink has not written before, or one it had and lost to another instance
  // for a while: read what was committed for it, whoever committed it.
  Status s = reader_->ReadToEnd(&emitted_through_, timeout_);
  if (!s.ok()) return Status(s.code(), Describe(RD_KAFKA_RESP_ERR_NO_ERROR, s.message()));
  for (const auto& row : buffer_) {
    if (!row.source.empty()) emitted_through_.try_emplace(row.source, INT64_MIN);
  }
  return Status::Ok();
}

Status KafkaSink::Write(std::span<const window::WindowRow> rows) {
  buffer_.insert(buffer_.end(), rows.begin(), rows.end());
  return Status::Ok();
}

Status KafkaSink::Flush() {
  return config_.transactional ? FlushTransactional() : FlushIdempotent();
}

rd_kafka_resp_err_t KafkaSink::Produce(rd_kafka_topic_t* rkt, std::string_view key,
                                       std::string_view value, void* opaque) {
  const auto deadline = Clock::now() + timeout_;
  for (;;) {
    if (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                         const_cast<char*>(value.data()), value.size(), key.data(), key.size(),
                         opaque) == 0) {
      return RD_KAFKA_RESP_ERR_NO_ERROR;
    }
    const rd_kafka_resp_err_t err = rd_kafka_last_error();
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || Clock::now() > deadline) return err;
    rd_kafka_poll(rk_, 10);  // the queue drains as deliveries are acknowledged
  }
}

Status KafkaSink::FlushTransactional() {
  if (aborting_) {
    Status s = FinishAbort();
    if (!s.ok()) return s;
  }
  if (txn_open_) return CommitOpenTransaction();
  if (buffer_.empty()) return Status::Ok();
  Status s = Connect();  // a new producer after a fatal error
  if (!s.ok()) return s;
  s = RefreshProgress();
  if (!s.ok()) return s;
  if (rd_kafka_error_t* e = rd_kafka_begin_transaction(rk_); e != nullptr) {
    return TxnError(e, "begin_transaction");
  }
  txn_open_ = true;
  txn_cursor_sent_ = false;
  txn_rows_ = buffer_.size();
  txn_skipped_ = 0;
  txn_bytes_ = 0;
  txn_through_.clear();
  delivery_error_ = RD_KAFKA_RESP_ERR_NO_ERROR;
  for (size_t i = 0; i < txn_rows_; ++i) {
    const window::WindowRow& row = buffer_[i];
    if (row.final && !row.source.empty()) {
      const auto known = emitted_through_.find(row.source);
      if (known != emitted_through_.end() && row.window_end_ms <= known->second) {
        ++txn_skipped_;  // committed by an earlier run
        continue;
      }
      auto [it, inserted] = txn_through_.try_emplace(row.source, row.window_end_ms);
      if (!inserted) it->second = std::max(it->second, row.window_end_ms);
    }
    value_scratch_.clear();
    AppendValue(row, &value_scratch_);
    const rd_kafka_resp_err_t err =
        Produce(rkt_, row.station, value_scratch_, reinterpret_cast<void*>(i + 1));
    if (err == RD_KAFKA_RESP_ERR__FATAL) return Fatal("produce");
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return AbortWith(ErrorStatus(err, Describe(err, "produce")));
    }
  }
  return CommitOpenTransaction();
}

Status KafkaSink::AwaitDeliveries() {
  const rd_kafka_resp_err_t flushed = rd_kafka_flush(rk_, Ms(timeout_));
  if (delivery_error_ != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return AbortWith(ErrorStatus(delivery_error_, Describe(delivery_error_, "delivery")));
  }
  if (flushed != RD_KAFKA_RESP_ERR_NO_ERROR) {
    // Still in flight: the next Flush() waits for them again, then goes on.
    return Status::Unavailable(
        Describe(flushed, std::to_string(rd_kafka_outq_len(rk_)) + " messages not delivered"));
  }
  return Status::Ok();
}

Status KafkaSink::CommitOpenTransaction() {
  Status s = AwaitDeliveries();
  if (!s.ok()) return s;
  if (!txn_cursor_sent_) {
    // The cursor of each input partition, in the same transaction as its rows, and only once
    // they are all delivered: on a broker that shows open transactions to read_committed
    // readers (the embedded one), a process killed in between leaves rows without their
    // cursor (read twice), never a cursor without its rows (lost).
    for (const auto& [source, through] : txn_through_) {
      value_scratch_.clear();
      AppendInt(through, &value_scratch_);
      const rd_kafka_resp_err_t err = Produce(progress_rkt_, source, value_scratch_, nullptr);
      if (err == RD_KAFKA_RESP_ERR__FATAL) return Fatal("produce");
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return AbortWith(ErrorStatus(err, Describe(err, "produce to " + progress_topic_)));
      }
    }
    txn_cursor_sent_ = true;
    s = AwaitDeliveries();
    if (!s.ok()) return s;
  }
  if (rd_kafka_error_t* e = rd_kafka_commit_transaction(rk_, Ms(timeout_)); e != nullptr) {
    return TxnError(e, "commit_transaction");
  }
  for (const auto& [source, through] : txn_through_) {
    auto [it, inserted] = emitted_through_.try_emplace(source, through);
    if (!inserted) it->second = std::max(it->second, through);
  }
  bytes_written_ += txn_bytes_;
  skipped_total_ += txn_skipped_;
  if (txn_skipped_ > 0) {
    Log(LogLevel::kInfo, "sink", "final rows already committed by an earlier run were skipped",
        {{"sink", config_.name},
         {"skipped", std::to_string(txn_skipped_)},
         {"written", std::to_string(txn_rows_ - txn_skipped_)}});
  }
  buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<ptrdiff_t>(txn_rows_));
  txn_open_ = false;
  txn_rows_ = 0;
  txn_through_.clear();
  return Status::Ok();
}

Status KafkaSink::TxnError(rd_kafka_error_t* error, std::string_view what) {
  const rd_kafka_resp_err_t code = rd_kafka_error_code(error);
  const bool fatal = rd_kafka_error_is_fatal(error);
  const bool requires_abort = rd_kafka_error_txn_requires_abort(error);
  const std::string text = std::string(what) + ": " + rd_kafka_error_string(error);
  rd_kafka_error_destroy(error);
  if (fatal) return Fatal(what);
  if (requires_abort && txn_open_) {
    // A delivery that failed for good explains the abort better than the abort itself.
    const rd_kafka_resp_err_t cause =
        kafka_producer::IsPermanent(delivery_error_) ? delivery_error_ : code;
    return AbortWith(ErrorStatus(cause, Describe(cause, text)));
  }
  // Retriable (a timeout, a coordinator moving): the next Flush() makes the same call again.
  return ErrorStatus(code, Describe(code, text));
}

Status KafkaSink::AbortWith(Status cause) {
  txn_open_ = false;
  aborting_ = true;
  Status s = FinishAbort();
  if (!s.ok() && !s.IsRetryable()) return s;
  if (cause.IsRetryable()) return Status::Unavailable(cause.message() + "; transaction aborted");
  return cause;
}

Status KafkaSink::FinishAbort() {
  if (rd_kafka_error_t* e = rd_kafka_abort_transaction(rk_, Ms(timeout_)); e != nullptr) {
    const rd_kafka_resp_err_t code = rd_kafka_error_code(e);
    const bool fatal = rd_kafka_error_is_fatal(e);
    const std::string text = rd_kafka_error_string(e);
    rd_kafka_error_destroy(e);
    if (fatal) return Fatal("abort_transaction");
    return Status::Unavailable(Describe(code, "abort_transaction: " + text));
  }
  aborting_ = false;
  txn_rows_ = 0;
  txn_bytes_ = 0;
  txn_through_.clear();
  delivery_error_ = RD_KAFKA_RESP_ERR_NO_ERROR;
  return Status::Ok();
}

Status KafkaSink::Fatal(std::string_view what) {
  char why[512] = "";
  const rd_kafka_resp_err_t code = rd_kafka_fatal_error(rk_, why, sizeof why);
  DropProducer();
  if (IsFenced(code)) {
    return Status::InvalidArgument(Describe(
        code, std::string(what) + ": the producer was fenced: another producer started with " +
                  "transactional.id '" + transactional_id_ + "' (" + why +
                  "); give each instance writing this topic its own transactional.id "
                  "(sinks[].properties.transactional.id)"));
  }
  if (kafka_producer::IsPermanent(code)) {
    return Status::IoError(Describe(code, std::string(what) + ": fatal producer error: " + why));
  }
  return Status::Unavailable(Describe(
      code, std::string(what) + ": fatal producer error: " + why + "; starting a new producer"));
}

void KafkaSink::DropProducer() {
  if (rk_ == nullptr) return;
  rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_poll(rk_, 0);  // delivery reports of what was purged
  if (rkt_ != nullptr) rd_kafka_topic_destroy(rkt_);
  if (progress_rkt_ != nullptr) rd_kafka_topic_destroy(progress_rkt_);
  rd_kafka_destroy(rk_);
  rk_ = nullptr;
  rkt_ = nullptr;
  progress_rkt_ = nullptr;
  initialized_ = false;
  progress_read_ = false;  // a transaction of the old producer may have committed
  txn_open_ = false;
  aborting_ = false;
  txn_rows_ = 0;
  txn_through_.clear();
  for (RowState& state : states_) {
    if (state == RowState::kInFlight) state = RowState::kPending;
  }
}

Status KafkaSink::FlushIdempotent() {
  if (buffer_.empty()) return Status::Ok();
  Status s = Connect();
  if (!s.ok()) return s;
  states_.resize(buffer_.size(), RowState::kPending);
  delivery_error_ = RD_KAFKA_RESP_ERR_NO_ERROR;
  rd_kafka_resp_err_t produce_error = RD_KAFKA_RESP_ERR_NO_ERROR;
  for (size_t i = 0; i < buffer_.size(); ++i) {
    if (states_[i] != RowState::kPending) continue;
    value_scratch_.clear();
    AppendValue(buffer_[i], &value_scratch_);
    produce_error =
        Produce(rkt_, buffer_[i].station, value_scratch_, reinterpret_cast<void*>(i + 1));
    if (produce_error != RD_KAFKA_RESP_ERR_NO_ERROR) break;
    states_[i] = RowState::kInFlight;
  }
  const rd_kafka_resp_err_t flushed = rd_kafka_flush(rk_, Ms(timeout_));
  char why[512];
  if (rd_kafka_fatal_error(rk_, why, sizeof why) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return Fatal("produce");
  }
  if (kafka_producer::IsPermanent(delivery_error_)) {
    return Status::IoError(Describe(delivery_error_, "delivery"));
  }
  if (produce_error != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return ErrorStatus(produce_error, Describe(produce_error, "produce"));
  }
  const size_t delivered =
      static_cast<size_t>(std::count(states_.begin(), states_.end(), RowState::kDelivered));
  if (delivered < buffer_.size()) {
    // Delivered rows stay marked and are not sent again; the rest are, by the next Flush().
    const rd_kafka_resp_err_t err =
        delivery_error_ != RD_KAFKA_RESP_ERR_NO_ERROR ? delivery_error_ : flushed;
    return Status::Unavailable(Describe(err, std::to_string(buffer_.size() - delivered) + " of " +
                                                 std::to_string(buffer_.size()) +
                                                 " rows not delivered"));
  }
  buffer_.clear();
  states_.clear();
  return Status::Ok();
}

void KafkaSink::OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto* self = static_cast<KafkaSink*>(opaque);
  const auto index = reinterpret_cast<uintptr_t>(m->_private);  // 0: a progress record
  const bool tracked = !self->config_.transactional && index > 0 && index <= self->states_.size();
  if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    // Keep the error that explains the most: a permanent one, else the first that is not the
    // purge of an aborted transaction.
    auto rank = [](rd_kafka_resp_err_t err) {
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return 0;
      if (err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {
        return 1;
      }
      return kafka_producer::IsPermanent(err) ? 3 : 2;
    };
    if (rank(m->err) > rank(self->delivery_error_)) self->delivery_error_ = m->err;
    if (tracked) self->states_[index - 1] = RowState::kPending;
    return;
  }
  if (index == 0) return;
  const uint64_t bytes = m->key_len + m->len;
  if (self->config_.transactional) {
    self->txn_bytes_ += bytes;
  } else {
    if (tracked) self->states_[index - 1] = RowState::kDelivered;
    self->bytes_written_ += bytes;
  }
}

Status KafkaSink::Close() {
  if (rk_ != nullptr && (txn_open_ || aborting_)) {
    if (rd_kafka_error_t* e = rd_kafka_abort_transaction(rk_, Ms(timeout_)); e != nullptr) {
      rd_kafka_error_destroy(e);  // the next producer with this id aborts it anyway
    }
  }
  reader_.reset();
  DropProducer();
  return Status::Ok();
}

int64_t KafkaSink::EmittedThrough(const std::string& source) const {
  const auto it = emitted_through_.find(source);
  return it == emitted_through_.end() ? INT64_MIN : it->second;
}

void KafkaSink::AppendValue(const window::WindowRow& row, std::string* out) {
  out->append("{\"station\":");
  AppendJsonString(row.station, out);
  out->append(",\"window_start\":\"");
  base::AppendIsoUtc(row.window_start_ms, out);
  out->append("\",\"window_end\":\"");
  base::AppendIsoUtc(row.window_end_ms, out);
  out->append("\",\"entries\":");
  AppendInt(row.entries, out);
  out->append(",\"exits\":");
  AppendInt(row.exits, out);
  out->append(",\"events\":");
  AppendInt(row.events, out);
  out->append(row.final ? ",\"final\":true}" : ",\"final\":false}");
}

}  // namespace turnstiled::sink
