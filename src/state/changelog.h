// Changelog: partition snapshots in a Kafka topic (state.changelog_topic), so that another
// instance of the group can restore a partition it is given, as Kafka Streams does.
//
// A snapshot of input partition (topic, p) is a record keyed "<topic>/<p>" in changelog
// partition p % N (N: the changelog topic's partition count), so a restore reads one
// partition. The topic is made compacted when turnstiled creates it; a broker without
// compaction (the embedded one) still works: Load() reads the partition to its end and keeps
// the newest record of the key.
//
// Thread-safe: librdkafka's producer is; Write() waits for its own records' delivery.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "window/partition_state.h"

struct rd_kafka_s;
struct rd_kafka_queue_s;

namespace turnstiled::state {

class Changelog {
 public:
  // `properties`: the source's librdkafka properties (TLS, SASL) minus consumer-only ones.
  Changelog(std::string bootstrap, std::string topic, std::map<std::string, std::string> properties,
            int partitions_hint);
  ~Changelog();
  Changelog(const Changelog&) = delete;
  Changelog& operator=(const Changelog&) = delete;

  // Makes the producer; no network yet, so a broker that is down does not stop a start.
  base::Status Open();
  // Writes each (topic, partition, bytes) and waits until all are acknowledged (acks=all), or
  // `timeout_ms` passes.
  struct Entry {
    std::string topic;
    int32_t partition;
    const std::string* bytes;
  };
  base::Status Write(const std::vector<Entry>& entries, int timeout_ms);
  // The newest usable snapshot of (topic, partition); nullopt when there is none.
  base::Result<std::optional<window::PartitionState>> Load(const std::string& topic,
                                                           int32_t partition, int timeout_ms);

  const std::string& topic() const { return topic_; }

 private:
  int Partitions(int timeout_ms);
  // Asks the brokers to create the topic, compacted; the answer is read by a later Write().
  void RequestTopic();
  void PollTopicRequest();

  const std::string bootstrap_;
  const std::string topic_;
  const std::map<std::string, std::string> properties_;
  const int partitions_hint_;
  rd_kafka_s* producer_ = nullptr;
  rd_kafka_queue_s* admin_queue_ = nullptr;  // guarded by the checkpointer's persist lock
};

}  // namespace turnstiled::state
