#include "sink/kafka_dead_letter.h"

#include <algorithm>
#include <climits>
#include <string_view>

#include "base/civil_time.h"
#include "base/log.h"
#include "sink/kafka_sink.h"

namespace turnstiled::sink {

using base::Log;
using base::LogLevel;
using base::Status;
using Clock = std::chrono::steady_clock;

namespace {

// How long Write() waits for room in a full local queue before it drops the record.
constexpr auto kQueueFullWait = std::chrono::seconds(1);

int Ms(std::chrono::milliseconds d) {
  return static_cast<int>(std::clamp<int64_t>(d.count(), 0, INT_MAX));
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
      .count();
}

// True at most once a second per `last_ms`, from any thread.
bool Due(std::atomic<int64_t>* last_ms) {
  const int64_t now = NowMs();
  int64_t last = last_ms->load();
  return (last == INT64_MIN || now - last >= 1000) && last_ms->compare_exchange_strong(last, now);
}

void AddHeader(rd_kafka_vu_t* vu, const char* name, std::string_view value) {
  vu->vtype = RD_KAFKA_VTYPE_HEADER;
  vu->u.header.name = name;
  vu->u.header.val = value.data();
  vu->u.header.size = static_cast<ssize_t>(value.size());
}

}  // namespace

base::Result<std::unique_ptr<DeadLetter>> MakeKafkaDeadLetter(
    const config::DeadLetterConfig& config) {
  auto dl = KafkaDeadLetter::Create(config);
  if (!dl.ok()) return dl.status();
  return std::unique_ptr<DeadLetter>(std::move(dl).value());
}

base::Result<std::unique_ptr<KafkaDeadLetter>> KafkaDeadLetter::Create(
    const config::DeadLetterConfig& config, std::chrono::milliseconds timeout) {
  if (config.topic.empty()) {
    return Status::InvalidArgument("dead_letter: type kafka needs a topic");
  }
  if (config.bootstrap_servers.empty()) {
    return Status::InvalidArgument("dead_letter: bootstrap_servers must not be empty");
  }
  // Room for the longest value plus headers; the brokers' own limit still applies.
  const int64_t max_message =
      std::clamp<int64_t>(config.max_record_bytes + int64_t{64} * 1024, 1000000, 1000000000);
  auto conf =
      kafka_producer::NewConf("dead_letter", {{"bootstrap.servers", config.bootstrap_servers},
                                              {"client.id", "turnstiled-dead-letter"},
                                              {"enable.idempotence", "true"},
                                              {"acks", "all"},
                                              {"linger.ms", "20"},
                                              {"compression.type", "zstd"},
                                              {"message.max.bytes", std::to_string(max_message)}});
  if (!conf.ok()) return conf.status();
  std::unique_ptr<KafkaDeadLetter> dl(new KafkaDeadLetter(config, timeout));
  rd_kafka_conf_set_opaque(*conf, dl.get());
  rd_kafka_conf_set_dr_msg_cb(*conf, &KafkaDeadLetter::OnDelivery);
  char errstr[512];
  dl->rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, *conf, errstr, sizeof errstr);
  if (dl->rk_ == nullptr) {
    rd_kafka_conf_destroy(*conf);
    return Status::InvalidArgument(std::string("dead_letter: ") + errstr);
  }
  return dl;
}

KafkaDeadLetter::~KafkaDeadLetter() {
  rd_kafka_flush(rk_, Ms(timeout_));
  rd_kafka_destroy(rk_);
}

void KafkaDeadLetter::Write(const DeadLetterEntry& entry) {
  const auto max = static_cast<size_t>(std::max<int64_t>(1, config_.max_record_bytes));
  const bool cut = entry.raw.size() > max;
  const std::string_view value = cut ? entry.raw.substr(0, max) : entry.raw;
  const std::string partition = std::to_string(entry.partition);
  const std::string offset = std::to_string(entry.offset);
  std::string event_time;
  if (entry.event_ms != INT64_MIN) base::AppendIsoUtc(entry.event_ms, &event_time);
  const std::string raw_bytes = std::to_string(entry.raw.size());

  rd_kafka_vu_t vus[11];
  size_t n = 0;
  vus[n].vtype = RD_KAFKA_VTYPE_TOPIC;
  vus[n++].u.cstr = config_.topic.c_str();
  vus[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
  vus[n++].u.i = RD_KAFKA_MSG_F_COPY;
  vus[n].vtype = RD_KAFKA_VTYPE_VALUE;
  vus[n].u.mem.ptr = const_cast<char*>(value.data());
  vus[n++].u.mem.size = value.size();
  AddHeader(&vus[n++], "reason", entry.reason);
  AddHeader(&vus[n++], "topic", entry.topic);
  AddHeader(&vus[n++], "partition", partition);
  AddHeader(&vus[n++], "offset", offset);
  if (!event_time.empty()) AddHeader(&vus[n++], "event_time", event_time);
  if (cut) {
    AddHeader(&vus[n++], "raw_bytes", raw_bytes);
    AddHeader(&vus[n++], "raw_truncated", "true");
  }

  const auto deadline = Clock::now() + kQueueFullWait;
  for (;;) {
    rd_kafka_error_t* error = rd_kafka_produceva(rk_, vus, n);
    if (error == nullptr) {
      rd_kafka_poll(rk_, 0);  // serve delivery reports as we go
      return;
    }
    const rd_kafka_resp_err_t err = rd_kafka_error_code(error);
    rd_kafka_error_destroy(error);
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || Clock::now() > deadline) {
      Drop(err);
      return;
    }
    rd_kafka_poll(rk_, 10);  // the queue drains as deliveries are acknowledged
  }
}

void KafkaDeadLetter::Drop(rd_kafka_resp_err_t err) {
  const uint64_t dropped = dropped_.fetch_add(1) + 1;
  {
    std::lock_guard<std::mutex> lock(error_mu_);
    if (first_error_.empty()) first_error_ = rd_kafka_err2str(err);
  }
  if (Due(&last_drop_log_ms_)) {
    Log(LogLevel::kError, "dead-letter", "dead letters dropped: the producer did not take them",
        {{"topic", config_.topic},
         {"error", rd_kafka_err2name(err)},
         {"dropped_total", std::to_string(dropped)}});
  }
}

void KafkaDeadLetter::OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto* self = static_cast<KafkaDeadLetter*>(opaque);
  if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    self->delivered_.fetch_add(1);
    return;
  }
  const uint64_t failed = self->failed_.fetch_add(1) + 1;
  {
    std::lock_guard<std::mutex> lock(self->error_mu_);
    if (self->first_error_.empty()) self->first_error_ = rd_kafka_err2str(m->err);
  }
  if (Due(&self->last_drop_log_ms_)) {
    Log(LogLevel::kError, "dead-letter", "dead letters not delivered",
        {{"topic", self->config_.topic},
         {"error", rd_kafka_err2name(m->err)},
         {"failed_total", std::to_string(failed)}});
  }
}

Status KafkaDeadLetter::Flush() {
  rd_kafka_flush(rk_, Ms(timeout_));
  const int outstanding = rd_kafka_outq_len(rk_);
  const uint64_t failed = failed_.load();
  const uint64_t dropped = dropped_.load();
  const uint64_t new_failed = failed - failed_reported_.exchange(failed);
  const uint64_t new_dropped = dropped - dropped_reported_.exchange(dropped);
  std::string first_error;
  {
    std::lock_guard<std::mutex> lock(error_mu_);
    first_error.swap(first_error_);
  }
  const std::string where = "dead letter (kafka topic " + config_.topic + "): ";
  if (outstanding > 0) {
    return Status::Unavailable(where + std::to_string(outstanding) +
                               " messages still undelivered after " +
                               std::to_string(timeout_.count()) + " ms");
  }
  if (new_failed > 0 || new_dropped > 0) {
    return Status::Unavailable(where + std::to_string(new_failed) + " deliveries failed and " +
                               std::to_string(new_dropped) + " records dropped since the last " +
                               "flush; first error: " + first_error);
  }
  return Status::Ok();
}

}  // namespace turnstiled::sink
