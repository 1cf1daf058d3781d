// Snapshot: one partition's state (window::PartitionState) as bytes, for a file in state.dir
// and a record of the changelog topic.
//
//   "TSNP" | format version (u32) | CRC-32C of the rest (u32) | body length (u64) | body
//
// The body is a zstd frame of the fields in order: topic, partition, next offset, high mark,
// closed-through, the devices, the windows. Integers are little-endian; strings carry a u32
// length. DecodeSnapshot() checks the magic, the version, the length and the checksum, and
// every length inside the body against what is left: a truncated, bit-flipped or foreign file
// is an InvalidArgument that says what is wrong, never a crash or a partial state.
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"
#include "window/partition_state.h"

namespace turnstiled::state {

inline constexpr uint32_t kSnapshotVersion = 1;

std::string EncodeSnapshot(const window::PartitionState& state);
base::Result<window::PartitionState> DecodeSnapshot(std::string_view bytes);

}  // namespace turnstiled::state
