// KafkaDeadLetter: dropped records on a Kafka topic (SPEC §5 `dead_letter: {type: kafka}`).
//
// One message per dropped record. The value is the record's raw bytes, cut to
// max_record_bytes; the headers say why and where it came from:
//
//   reason         "bad_field_count", "late", ... (as the file dead letter's "reason")
//   topic          the input topic ("" for a file source)
//   partition      the input partition, decimal
//   offset         the input offset (a line number for a file source), decimal
//   event_time     ISO-8601 UTC, only when the record decoded
//   raw_bytes      the full length, decimal, and
//   raw_truncated  "true", both only when the value was cut
//
// No key. The producer is idempotent (acks=all). Write() only queues the message: when the
// local queue is full it serves delivery reports and tries again for up to a second, then
// drops the record, counts it, and logs at most once a second. Flush() waits for every
// delivery report (up to `timeout`) and is kUnavailable when messages are still outstanding or
// when any delivery failed or any record was dropped since the last Flush().
//
// Thread-safe: ingest threads and shards call Write() concurrently (librdkafka's produce and
// poll are thread-safe; the counters are atomic). It is the exception path.
#pragma once

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "base/status.h"
#include "config/config.h"
#include "sink/dead_letter.h"

namespace turnstiled::sink {

base::Result<std::unique_ptr<DeadLetter>> MakeKafkaDeadLetter(
    const config::DeadLetterConfig& config);

class KafkaDeadLetter final : public DeadLetter {
 public:
  static base::Result<std::unique_ptr<KafkaDeadLetter>> Create(
      const config::DeadLetterConfig& config,
      std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~KafkaDeadLetter() override;
  KafkaDeadLetter(const KafkaDeadLetter&) = delete;
  KafkaDeadLetter& operator=(const KafkaDeadLetter&) = delete;

  void Write(const DeadLetterEntry& entry) override;
  base::Status Flush() override;

  uint64_t delivered() const { return delivered_.load(); }
  uint64_t failed() const { return failed_.load(); }
  uint64_t dropped() const { return dropped_.load(); }

 private:
  KafkaDeadLetter(const config::DeadLetterConfig& config, std::chrono::milliseconds timeout)
      : config_(config), timeout_(timeout) {}
  static void OnDelivery(rd_kafka_t* rk, const rd_kafka_message_t* m, void* opaque);
  // Counts a record that never reached the producer's queue; logs at most once a second.
  void Drop(rd_kafka_resp_err_t err);

  // Constant after construction.
  const config::DeadLetterConfig config_;
  const std::chrono::milliseconds timeout_;
  rd_kafka_t* rk_ = nullptr;  // set by Create()

  // Any thread.
  std::atomic<uint64_t> delivered_{0};
  std::atomic<uint64_t> failed_{0};   // delivery reports with an error
  std::atomic<uint64_t> dropped_{0};  // never queued
  std::atomic<int64_t> last_drop_log_ms_{INT64_MIN};
  // What the last Flush() had seen, so each Flush() reports only what is new.
  std::atomic<uint64_t> failed_reported_{0};
  std::atomic<uint64_t> dropped_reported_{0};
  std::mutex error_mu_;
  std::string first_error_;  // since the last Flush(); guarded by error_mu_
};

}  // namespace turnstiled::sink
