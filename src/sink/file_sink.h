// FileSink: the data lake sink (SPEC §5 `file`). Rows go to Hive-style folders chosen by
// `partition_by` (default [date]; see PartitionDir), one file per window and owning input
// partition:
//
//   <path>/date=2024-01-06/part-20240106T040000Z-20240106T080000Z-turnstile-stream-3.csv.zst
//
// The name is a function of the data only: the window, and the input partition ("source",
// "<topic>-<partition>") whose state produced the rows; a file source's rows have none. So a
// replay, a restart, or another instance of the group that takes the partition over writes the
// same name and replaces the file instead of adding a copy: a query over the lake counts each
// window once (docs/SINKS.md). The caller delivers every row of a (window, source) in one
// flush: the shard that owns an input partition emits all its rows of a window at once, and a
// file source's rows are released together at the end of the input.
//
//   - Within a flush, when a (station, window) of a file appears more than once (emit: update
//     followed by final), the last row written wins.
//   - Rolling by size: a group whose encoded bytes pass roll_bytes is split at row boundaries
//     into ...-0, ...-1, ... in row order; parts a previous write of the group left beyond
//     the new count are removed.
//   - Every file is written under a dot-temp name in its directory and renamed, so a reader
//     (who ignores dot files, as Spark, Hive and DuckDB's globs do) never sees half a file.
//   - Durability is one fdatasync per flush: of the journal (lake_journal.h), a record of every
//     file's path and content. The lake files are synced together, one syncfs(2), when the
//     journal passes kCheckpointBytes or kCheckpointAge, and at Close(); then the journal is
//     emptied. Open() writes again the files of a record left by a machine that stopped before
//     that sync.
// On error Flush() returns kUnavailable (ENOSPC, EDQUOT, EIO) or kIoError, removes its temp
// files and keeps the rows buffered, so the next Flush() writes them again under the same
// names. Open() removes temp files left behind by a crash, and refuses a path whose journal
// another process holds: one sink instance per path.
//
// Thread-compatible: one writer thread, as every Sink.
#pragma once

#include <chrono>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "config/config.h"
#include "sink/lake_journal.h"
#include "sink/sink.h"
#include "window/row.h"

struct ZSTD_CCtx_s;

namespace turnstiled::sink {

class FileSink final : public Sink {
 public:
  // `boot_id`: the kernel's boot id (tests pass another to act as a machine that restarted).
  explicit FileSink(config::SinkConfig config, std::string boot_id = CurrentBootId());
  ~FileSink() override;
  FileSink(const FileSink&) = delete;
  FileSink& operator=(const FileSink&) = delete;

  base::Status Open() override;
  base::Status Write(std::span<const window::WindowRow> rows) override;
  base::Status Flush() override;
  base::Status Close() override;

  size_t buffered_rows() const { return buffer_.size(); }
  uint64_t files_written() const { return files_written_; }
  // Bytes in the journal: records of flushes whose files are not yet synced.
  uint64_t journal_bytes() const { return journal_ ? journal_->size() : 0; }
  // What Open() found in the journal: files written again, records, bytes of a cut tail.
  struct Recovery {
    size_t records = 0;
    size_t rewritten = 0;
    uint64_t ignored_bytes = 0;
  };
  const Recovery& recovery() const { return recovery_; }
  // The journal is synced into the lake when it holds this much, or its oldest record is this
  // old: the kernel has written most of those files back by then, so the sync is short.
  static constexpr uint64_t kCheckpointBytes = 64ULL << 20;
  static constexpr std::chrono::seconds kCheckpointAge{30};
  uint64_t FilesWritten() const override { return files_written_; }
  // Uncompressed bytes of the published files.
  uint64_t BytesWritten() const override { return bytes_written_; }

 private:
  // Writes one file's group, rows [begin, end) of `order`, as staged files; adds the names of
  // parts an earlier, larger write of the group may have left to `stale`.
  struct Staged;
  // The parts an earlier write of a group may have left beyond the new ones: the unsuffixed
  // name when the group is now split, and every numbered part from `first_part` on.
  struct StaleParts {
    std::string stem;
    bool unsuffixed = false;
    size_t first_part = 0;
    base::Status Remove(const std::string& extension) const;
  };
  base::Status StageGroup(const std::vector<size_t>& order, size_t begin, size_t end,
                          std::vector<Staged>* staged, std::vector<StaleParts>* stale);
  // Writes again, after a machine stopped, each file of `records` whose content differs on disk.
  base::Status Replay(const std::vector<JournalRecord>& records);
  // Syncs the lake's filesystem, then empties the journal.
  base::Status Checkpoint();
  std::string Relative(const std::string& path) const;
  bool FileOrder(const window::WindowRow& a, const window::WindowRow& b) const;
  bool SameFile(const window::WindowRow& a, const window::WindowRow& b) const;

  // Constant after construction.
  const config::SinkConfig config_;
  const std::string extension_;
  ZSTD_CCtx_s* const cctx_;  // owned; null without compression
  const bool by_station_;    // partition_by has "station": a file per station and window
  const std::string boot_id_;

  std::vector<window::WindowRow> buffer_;
  std::string scratch_;
  std::string zstd_out_;  // the compressor's output buffer, for every file
  std::unique_ptr<LakeJournal> journal_;
  JournalRecordBuilder record_;
  std::chrono::steady_clock::time_point journal_since_{};  // of its oldest record
  Recovery recovery_;
  uint64_t files_written_ = 0;
  uint64_t bytes_written_ = 0;
  uint64_t staged_bytes_ = 0;  // of the flush under way
};

}  // namespace turnstiled::sink
