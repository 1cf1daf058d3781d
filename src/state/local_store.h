// LocalStore: the newest snapshot of each partition, as files under state.dir.
//
//   <dir>/<group>/<topic>/<partition>.snap       the newest
//   <dir>/<group>/<topic>/<partition>.snap.prev  the one before it
//
// Write() puts the bytes in a dot-temp file, fsyncs it, moves the current file to .prev,
// renames the temp file into place and fsyncs the folder: a crash at any point leaves a whole
// snapshot under one of the two names. Load() reads the newest; when it is damaged (truncated,
// bit-flipped) it logs what is wrong and falls back to .prev.
//
// Thread-safe: calls for different partitions may run at once; the checkpointer serialises
// calls for one partition.
#pragma once

#include <optional>
#include <string>

#include "base/status.h"
#include "window/partition_state.h"

namespace turnstiled::state {

class LocalStore {
 public:
  LocalStore(std::string dir, std::string group);

  // Creates the folders and proves they are writable. A clear error when not: `run` stops.
  base::Status Open();
  // Bytes as EncodeSnapshot() made them.
  base::Status Write(const std::string& topic, int32_t partition, const std::string& bytes);
  // nullopt when there is no usable snapshot (none, or every copy damaged; logged).
  std::optional<window::PartitionState> Load(const std::string& topic, int32_t partition) const;

  std::string PathFor(const std::string& topic, int32_t partition) const;

 private:
  const std::string root_;  // <dir>/<group>
};

}  // namespace turnstiled::state
