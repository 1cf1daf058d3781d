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
//   - Every file is written under a dot-temp name and renamed, so a reader (who ignores dot
//     files, as Spark, Hive and DuckDB's globs do) never sees half a file. The temp file is a
//     spare made ahead in the sink's folder when one is ready (spare_files.h: creating files
//     was the slow part of a small flush), else one created in the file's directory.
//   - Durability is one fdatasync per flush, of a small write: a record of every file's path and
//     content in the journal (lake_journal.h). There are two journal files. When the one in use
//     passes kCheckpointBytes or kCheckpointAge (or its zeroed room), flushes go on in the other,
//     and a background thread syncs the lake's filesystem once (syncfs(2)), which makes every
//     file of the first one's records durable, and empties it. Close() syncs and removes both.
//     Open() writes again the files of records left by a machine that stopped before a sync.
// On error Flush() returns kUnavailable (ENOSPC, EDQUOT, EIO) or kIoError, removes its temp
// files and keeps the rows buffered, so the next Flush() writes them again under the same
// names. Open() removes temp files left behind by a crash, and refuses a path whose journal
// another process holds: one sink instance per path.
//
//   - A large flush (kParallelStageRows rows or more: a bounded input's end, a catch-up) stages
//     its files on two threads, each with its own compressor: the writer takes files from the
//     first on, a helper thread started for that flush from the last back, until they meet.
//     The files, the journal record and the names are the same as with one thread.
//
// Thread-compatible: one writer thread, as every Sink (the syncer thread and a large flush's
// helper are the sink's own).
#pragma once

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "sink/lake_journal.h"
#include "sink/sink.h"
#include "sink/spare_files.h"
#include "window/row.h"

struct ZSTD_CCtx_s;

namespace turnstiled::sink {

class StagedFile;

class FileSink final : public Sink {
 public:
  struct Options {
    // Which boot this is (tests pass another to act as a machine that restarted).
    std::string boot_id = CurrentBootId();
    // Off: no syncer thread; the journals are synced and emptied only by Close() and Open()
    // (tests that need to know what the journals hold).
    bool background_sync = true;
    // Names this process's journals: .turnstiled-journal-<host>-<instance>.0 and .1.
    std::string instance = std::to_string(::getpid());
    // Empty files made ahead in the sink's folder for flushes to write (spare_files.h); 0
    // makes every file in the flush that writes it.
    size_t spare_files = kSpareFiles;
  };
  explicit FileSink(config::SinkConfig config) : FileSink(std::move(config), Options{}) {}
  FileSink(config::SinkConfig config, Options options);
  ~FileSink() override;
  FileSink(const FileSink&) = delete;
  FileSink& operator=(const FileSink&) = delete;

  base::Status Open() override;
  base::Status Write(std::span<const window::WindowRow> rows) override;
  // Keeps the batch until the next successful Flush() instead of copying its rows.
  base::Status WriteBatch(const RowBatchPtr& rows) override;
  base::Status Flush() override;
  base::Status Close() override;

  size_t buffered_rows() const { return buffer_.size(); }
  uint64_t files_written() const { return files_written_; }
  // Bytes in the journals: records of flushes whose files may not be synced yet.
  uint64_t JournalBytes() const override;
  // What Open() found in the journals: records, files written again, cut records.
  struct Recovery {
    size_t records = 0;
    size_t rewritten = 0;
    size_t cut_records = 0;
  };
  const Recovery& recovery() const { return recovery_; }
  // The journal in use is handed to the syncer when it holds this much, or its oldest record is
  // this old.
  static constexpr uint64_t kCheckpointBytes = 32ULL << 20;
  static constexpr std::chrono::seconds kCheckpointAge{30};
  // Zeros written ahead in a journal the syncer emptied: twice what it held, within these.
  static constexpr uint64_t kJournalMinFill = 1ULL << 20;
  static constexpr uint64_t kJournalMaxFill = 64ULL << 20;
  // A flush of this many rows or more syncs the filesystem itself instead of the journal.
  static constexpr size_t kSyncDirectlyRows = 16384;
  // A flush of this many rows or more stages its files on two threads.
  static constexpr size_t kParallelStageRows = 4096;
  // Spare files kept ready: several flushes' worth of a streaming job's files.
  static constexpr size_t kSpareFiles = 32;
  // Spares ready now (tests).
  size_t spares_ready() const { return spares_ != nullptr ? spares_->ready() : 0; }
  uint64_t FilesWritten() const override { return files_written_; }
  // Uncompressed bytes of the published files.
  uint64_t BytesWritten() const override { return bytes_written_; }

 private:
  struct Staged;
  // What staging files needs of its own: a thread uses one at a time.
  struct Encoder {
    ZSTD_CCtx_s* cctx = nullptr;  // owned; null without compression
    std::string scratch;
    std::string zstd_out;         // the compressor's output buffer, for every file
    uint64_t staged_bytes = 0;    // of the flush under way
    std::vector<size_t> order;    // the group under way's rows, sorted
    std::string dev_checked_dir;  // the last folder NewFile() compared with the sink's
    bool dev_same = false;        // ... and whether it is on the sink folder's filesystem
  };
  // The parts an earlier write of a group may have left beyond the new ones: the unsuffixed
  // name when the group is now split, and every numbered part from `first_part` on.
  struct StaleParts {
    std::string stem;
    bool unsuffixed = false;
    size_t first_part = 0;
    base::Status Remove(const std::string& extension) const;
  };
  // Writes one file's group, rows [begin, end) of `group_rows`, as staged files, sorted by
  // station with the last row of each station kept; adds the names of parts an earlier, larger
  // write of the group may have left to `stale`.
  base::Status StageGroup(Encoder* enc, const std::vector<size_t>& group_rows, size_t begin,
                          size_t end, std::vector<Staged>* staged, std::vector<StaleParts>* stale);
  // A staged file in `dir`: a spare when one is ready and `dir` is on the sink folder's
  // filesystem (a rename cannot leave it), else a file created now.
  base::Result<std::unique_ptr<StagedFile>> NewFile(Encoder* enc, const std::string& dir);
  // Writes again, after a machine stopped, each file of `records` whose content differs on disk.
  base::Status Replay(const std::vector<JournalRecord>& records);
  // Makes a flush's published files durable with one record in the journal in use, and hands
  // that journal to the syncer when it is due.
  base::Status Journal(const std::vector<Staged>& staged, const std::vector<StaleParts>& stale);
  // Syncs the lake's filesystem, then empties both journals. Not while the syncer runs.
  base::Status SyncAndEmptyJournals();
  void SyncLoop();
  void StopSyncer();
  std::string Relative(const std::string& path) const;
  bool FileOrder(const window::WindowRow& a, const window::WindowRow& b) const;
  // Sorts the indexes of buffer_ into *order by file: (*groups)[g] is [begin, end) of *order
  // for the g-th file in FileOrder. Within a group, rows stay in arrival order (by_station_:
  // in FileOrder).
  void GroupForFiles(std::vector<size_t>* order,
                     std::vector<std::pair<size_t, size_t>>* groups) const;
  bool SameFile(const window::WindowRow& a, const window::WindowRow& b) const;

  // Constant after construction.
  const config::SinkConfig config_;
  const std::string extension_;
  const bool by_station_;  // partition_by has "station": a file per station and window
  const std::string boot_id_;
  const bool background_sync_;
  const std::string instance_;
  const size_t spare_target_;

  // The rows written since the last flush, in arrival order; they live in `batches_`.
  std::vector<const window::WindowRow*> buffer_;
  std::vector<RowBatchPtr> batches_;
  Encoder encoders_[2];  // [1]: a large flush's helper thread
  // journals_[active_] takes the records; the other is the syncer's while sync_pending_ names it.
  std::unique_ptr<LakeJournal> journals_[2];
  std::vector<std::unique_ptr<LakeJournal>> adopted_;  // of gone processes, until recovered
  int active_ = 0;
  uint64_t sequence_ = 0;  // of the next record
  JournalRecordBuilder record_;
  std::chrono::steady_clock::time_point journal_since_{};  // of the active one's oldest record
  Recovery recovery_;

  std::thread syncer_;
  std::mutex sync_mu_;
  std::condition_variable sync_cv_;
  int sync_pending_ = -1;   // guarded by sync_mu_: the journal to sync, empty and fill, or -1
  uint64_t sync_fill_ = 0;  // guarded by sync_mu_
  bool sync_stop_ = false;  // guarded by sync_mu_
  uint64_t files_written_ = 0;
  uint64_t bytes_written_ = 0;
  bool keep_copies_ = true;  // of the flush under way: its files' content, for the journal
  dev_t root_dev_ = 0;       // the sink folder's filesystem, from Open()
  std::unique_ptr<SpareFiles> spares_;  // from Open() to Close(); null without spares
};

}  // namespace turnstiled::sink
