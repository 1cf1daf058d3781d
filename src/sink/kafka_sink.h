// KafkaSink: window rows as JSON messages on a results topic (SPEC §5 `kafka`).
//
// One message per row, keyed by station (librdkafka's murmur2_random partitioner, the Java
// clients' default, so a station lands on the same partition whoever produces it), with the
// value
//
//   {"station":"59 ST","window_start":"2024-01-06T04:00:00Z","window_end":"2024-01-06T08:00:00Z",
//    "entries":120,"exits":98,"events":6,"final":true}
//
// transactional: true (the default): exactly once for read_committed readers. The producer is
// transactional (transactional.id "turnstiled-<sink name>-<topic>" unless `properties` sets one)
// and each Flush() is one transaction holding every buffered row plus, once those are delivered,
// one record per input partition whose final rows advanced on the compacted topic
// "<topic>.progress": key "<input topic>-<partition>" (WindowRow::source), value the highest
// window_end (epoch ms, decimal text) of the final rows committed for it. Flush() returns OK only
// after the commit. Open() fences any earlier producer with the same id (aborting its open
// transaction) and reads the progress topic read_committed into `emitted_through`. A final row
// whose window_end is at or below emitted_through[source] was committed by an earlier run (a
// restart after kill -9 restores an older checkpoint and emits those windows again, the same rows)
// and is skipped. Rows of a file source (source "") and non-final rows (emit: update) are never
// skipped. See docs/SINKS.md for why this is exactly once.
//
// transactional: false: an idempotent producer (acks=all), at least once. Flush() waits for
// every delivery report; rows that were not delivered stay buffered and only they are sent
// again.
//
// Error classes (sink.h): brokers down, timeouts and other retriable errors are kUnavailable,
// and the buffered rows are kept (an aborted transaction is sent again whole). Authorization
// failures, an invalid topic, a message too large, an unsupported broker and a fenced producer
// (another instance with the same transactional.id) are permanent. A property librdkafka
// refuses is refused by MakeKafkaSink(), before anything connects.
//
// Thread-compatible: one writer thread, as every Sink. librdkafka's callbacks (delivery
// reports) run inside the librdkafka calls that thread makes.
#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "config/config.h"
#include "sink/sink.h"
#include "window/row.h"

namespace turnstiled::sink {

base::Result<std::unique_ptr<Sink>> MakeKafkaSink(const config::SinkConfig& config);

class KafkaSink final : public Sink {
 public:
  // `timeout` bounds each blocking librdkafka call (init, flush, commit, progress reads).
  static base::Result<std::unique_ptr<KafkaSink>> Create(
      const config::SinkConfig& config,
      std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~KafkaSink() override;
  KafkaSink(const KafkaSink&) = delete;
  KafkaSink& operator=(const KafkaSink&) = delete;

  base::Status Open() override;
  base::Status Write(std::span<const window::WindowRow> rows) override;
  base::Status Flush() override;
  base::Status Close() override;
  uint64_t BytesWritten() const override { return bytes_written_; }

  // The message value of one row (no trailing newline).
  static void AppendValue(const window::WindowRow& row, std::string* out);
  // The highest committed final window_end for `source`, or INT64_MIN when none is known.
  int64_t EmittedThrough(const std::string& source) const;
  // Final rows skipped as already committed, since construction.
  uint64_t skipped_rows() const { return skipped_total_; }
  const std::string& progress_topic() const { return progress_topic_; }
  const std::string& transactional_id() const { return transactional_id_; }

 private:
  class ProgressReader;
  // Delivery state of a buffered row (transactional: false).
  enum class RowState : uint8_t { kPending, kInFlight, kDelivered };

  KafkaSink(const config::SinkConfig& config, rd_kafka_conf_t* conf, std::string transactional_id,
            std::chrono::milliseconds timeout);

  // Creates the producer, fences earlier ones (transactional), checks the results topic and,
  // transactional, reads the progress topic. Each step is skipped once done.
  base::Status Connect();
  base::Status CheckTopic(const std::string& topic);
  base::Status EnsureProgressTopic();
  // Folds what the progress reader has fetched into emitted_through_; reads to the end first
  // when the buffer holds a source it has never seen.
  base::Status RefreshProgress();

  base::Status FlushTransactional();
  // Sends the cursors once the rows are delivered, then commits the open transaction (rows
  // [0, txn_rows_) of the buffer).
  base::Status CommitOpenTransaction();
  // Waits for every delivery report; aborts on a failed delivery.
  base::Status AwaitDeliveries();
  // Handles an error of a transactional call; takes ownership of `error`.
  base::Status TxnError(rd_kafka_error_t* error, std::string_view what);
  // Aborts the open transaction; returns `cause` (or the abort's own failure).
  base::Status AbortWith(base::Status cause);
  base::Status FinishAbort();
  // The producer hit a fatal error: permanent when fenced, otherwise it is dropped and the next
  // Flush() starts a new one.
  base::Status Fatal(std::string_view what);
  void DropProducer();

  base::Status FlushIdempotent();
  // Queues one message, serving delivery reports while the local queue is full.
  rd_kafka_resp_err_t Produce(rd_kafka_topic_t* rkt, std::string_view key, std::string_view value,
                              void* opaque);

  static void OnDelivery(rd_kafka_t* rk, const rd_kafka_message_t* m, void* opaque);
  std::string Describe(rd_kafka_resp_err_t err, std::string_view what) const;

  // Constant after construction.
  const config::SinkConfig config_;
  rd_kafka_conf_t* const conf_;  // owned; a copy goes to each producer
  const std::string transactional_id_;
  const std::string progress_topic_;
  const std::chrono::milliseconds timeout_;

  // Owned by the writer thread.
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_topic_t* rkt_ = nullptr;           // results topic
  rd_kafka_topic_t* progress_rkt_ = nullptr;  // progress topic (transactional)
  bool initialized_ = false;                  // init_transactions done for rk_
  bool topics_checked_ = false;
  bool progress_read_ = false;  // the progress topic read to its end since rk_ was created
  std::unique_ptr<ProgressReader> reader_;
  std::map<std::string, int64_t> emitted_through_;  // source -> window_end ms (INT64_MIN: none)

  std::vector<window::WindowRow> buffer_;
  std::vector<RowState> states_;  // transactional: false; parallel to buffer_
  std::string value_scratch_;

  // The open transaction (transactional).
  bool txn_open_ = false;
  bool aborting_ = false;         // an abort failed and must be finished before anything else
  bool txn_cursor_sent_ = false;  // its progress records are produced
  size_t txn_rows_ = 0;
  uint64_t txn_skipped_ = 0;
  uint64_t txn_bytes_ = 0;                      // delivered result bytes in it
  std::map<std::string, int64_t> txn_through_;  // what its commit makes emitted_through_
  rd_kafka_resp_err_t delivery_error_ = RD_KAFKA_RESP_ERR_NO_ERROR;  // first since last flush
  std::string delivery_error_text_;

  uint64_t bytes_written_ = 0;
  uint64_t skipped_total_ = 0;
};

// What the Kafka sink and the Kafka dead letter share.
namespace kafka_producer {

// A producer configuration from `settings`, applied in order (a later key wins), with our
// librdkafka log callback. InvalidArgument names `what` and the key, and never quotes the value
// of a key that holds a secret.
base::Result<rd_kafka_conf_t*> NewConf(
    std::string_view what, const std::vector<std::pair<std::string, std::string>>& settings);

// Whether retrying cannot help: authorization, an invalid topic or record, a message too large,
// a fenced producer, a broker without the feature, a bad argument.
bool IsPermanent(rd_kafka_resp_err_t err);

}  // namespace kafka_producer

}  // namespace turnstiled::sink
