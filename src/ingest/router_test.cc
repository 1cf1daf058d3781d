#include "ingest/router.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace turnstiled;
using namespace turnstiled::ingest;

namespace {

struct Reading {
  std::string station;
  std::string device;
};

void AddReading(Router& router, const Reading& r, int64_t offset) {
  decode::Record rec;
  rec.station = r.station;
  rec.device = r.device;
  rec.event_ms = offset * 1000;
  rec.entries = offset;
  rec.exits = offset;
  const std::string raw = "raw " + std::to_string(offset);
  router.Add(rec, raw, 0, offset, window::kNoTime);
}

// Takes every batch the shard has been sent, checks that each record's strings are inside its
// batch's arena and are the ones it was added with, and hands the batches back.
std::vector<size_t> Drain(ShardChannel& channel, Router& router, const std::vector<Reading>& added,
                          bool keep_raw = false) {
  std::vector<size_t> sizes;
  window::RecordBatch* b = nullptr;
  while (channel.queue.try_dequeue(b)) {
    for (const window::RoutedRecord& r : b->records) {
      const Reading& want = added.at(static_cast<size_t>(r.offset));
      INFO("record " << r.offset);
      REQUIRE(r.station_off + r.station_len <= b->arena.size());
      REQUIRE(r.device_off + r.device_len <= b->arena.size());
      CHECK(b->Station(r) == want.station);
      CHECK(b->Device(r) == want.device);
      CHECK(r.station_hash == base::StringHash(want.station));
      CHECK(b->Raw(r) == (keep_raw ? "raw " + std::to_string(r.offset) : ""));
    }
    sizes.push_back(b->arena.size());
    router.Release(b);
  }
  return sizes;
}

}  // namespace

TEST_CASE("a device's consecutive readings share their strings within a batch, never across") {
  ShardChannel channel;
  Router router(0, {&channel}, /*batches_per_shard=*/2, /*batch_records=*/3, /*keep_raw=*/false,
                /*by_partition=*/false);
  const Reading a{"59 ST", "A002,R051,02-00-00"};
  const Reading b{"59 ST", "A002,R051,02-00-01"};
  const Reading c{"GRD CNTRL", "A002,R051,02-00-01"};  // b's device at another station
  const size_t ab = a.station.size() + a.device.size();
  std::vector<Reading> added;
  auto add = [&](const Reading& r) {
    added.push_back(r);
    AddReading(router, r, static_cast<int64_t>(added.size() - 1));
  };

  // One batch of a's readings holds a's strings once.
  add(a);
  add(a);
  add(a);
  CHECK(Drain(channel, router, added) == std::vector<size_t>{ab});
  // The batch came back cleared, and the next one is that same batch: the strings are added
  // again, not taken from where they were.
  add(a);
  add(b);
  add(c);
  add(c);
  add(a);
  router.Flush(window::SourceProgress{});
  const size_t bc = ab + b.station.size() + b.device.size() + c.station.size() + c.device.size();
  const size_t ca = c.station.size() + c.device.size() + ab;
  CHECK(Drain(channel, router, added) == std::vector<size_t>{bc, ca});
}

TEST_CASE("with a dead letter, each routed record keeps its own raw bytes") {
  ShardChannel channel;
  Router router(0, {&channel}, /*batches_per_shard=*/2, /*batch_records=*/4, /*keep_raw=*/true,
                /*by_partition=*/false);
  const Reading a{"59 ST", "A002,R051,02-00-00"};
  const Reading b{"GRD CNTRL", "R001,R101,00-00-00"};
  std::vector<Reading> added;
  for (const Reading* r : {&a, &a, &b, &a, &b, &b}) {
    added.push_back(*r);
    AddReading(router, *r, static_cast<int64_t>(added.size() - 1));
  }
  router.Flush(window::SourceProgress{});
  CHECK(Drain(channel, router, added, /*keep_raw=*/true).size() == 2);
}
