// PartitionState: what one input partition has contributed to the shards' state, at one cut of
// its input (SPEC §6). It is what a checkpoint holds per partition and what a restore installs:
//   - the counter baselines of the devices seen on the partition;
//   - the partial aggregates of the open windows its records fed;
//   - its clocks: the highest event time read (`high_ms`) and how far its windows are closed
//     (`closed_through`: a record whose windows all end at or before it is late);
//   - `next_offset`: the first record after the cut.
// ShardControl is how a source asks the shard that owns a partition to export, drop or
// install that state. It travels through the shard's queue like a batch of records, so it is
// handled exactly between the records sent before it and those sent after.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace turnstiled::window {

struct DeviceState {
  std::string station;
  std::string device;
  int64_t t0 = 0;  // last accepted reading
  int64_t e0 = 0;
  int64_t x0 = 0;
};

struct WindowState {
  std::string station;
  int64_t start_ms = 0;
  int64_t entries = 0;
  int64_t exits = 0;
  int64_t events = 0;
  int64_t first_ms = 0;
  int64_t last_ms = 0;
};

struct PartitionState {
  std::string topic;
  int32_t partition = 0;
  int64_t next_offset = -1;
  int64_t high_ms = 0;         // window::kNoTime when nothing was read
  int64_t closed_through = 0;  // window::kNoTime when nothing closed
  std::vector<DeviceState> devices;
  std::vector<WindowState> windows;
};

struct ShardControl {
  enum class Kind {
    kExport,         // copy the state of `slots` into `states` (same order)
    kExportAndDrop,  // ... and forget it: the partitions are being handed over
    kRestore,        // install states[0] for slots[0], replacing what the shard had for it
  };
  Kind kind = Kind::kExport;
  std::vector<int32_t> slots;
  std::vector<PartitionState> states;
  // Called on the shard thread once the control has been handled.
  std::function<void()> done;
};

}  // namespace turnstiled::window
