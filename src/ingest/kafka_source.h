// Kafka sources: `source.kafka.consumer_threads` librdkafka consumers in one consumer group,
// one thread each (SPEC §1, §6).
//
// - Offsets are never committed on receipt (enable.auto.commit=false): only after a durable
//   checkpoint, or (Commit()) after every sink acknowledged what the records produced.
// - Each message's partition has a PartitionClock: its highest event time feeds the
//   watermark, and a partition with no data for window.idle_timeout stops holding it back.
// - Rebalance: on revoke a thread first waits until the shards have processed every batch it
//   sent, then checkpoints the partitions and drops their state; whoever is assigned them, in
//   this process or another, restores it (docs/STATE.md).
// - --available-now: the end offsets are read once at start; each partition is done when its
//   position reaches them, and when every partition of the group is done the sources report
//   `finished` and return.
#pragma once

#include <memory>
#include <vector>

#include "ingest/ingestor.h"
#include "ingest/source.h"

namespace turnstiled::ingest {

base::Result<std::vector<std::unique_ptr<Source>>> MakeKafkaSources(const IngestContext& ctx,
                                                                    bool available_now);

}  // namespace turnstiled::ingest
