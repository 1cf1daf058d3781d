// FileSink: the data lake sink (SPEC §5 `file`). Rows go to Hive-style partitions
//
//   <path>/station=<escaped>/date=YYYY-MM-DD/part-<first start>-<last end>[-<n>].<ext>
//
// where the date is the UTC date of window_start and <escaped> is EscapePartitionValue(station)
// (partition_path.h). <ext> is csv or jsonl, plus .zst when compressed.
//
// Write() copies rows into a buffer; Flush() turns the buffer into files:
//   - Rows are grouped by (station, date); each group is one file, sorted by (window_start,
//     window_end). When one flush holds several rows for the same (station, window_start,
//     window_end) (emit: update followed by final), the last one written wins.
//   - The name is a function of the rows only (compact UTC stamps: 20240106T040000Z), so a
//     replay of the same rows replaces the file instead of adding a second one.
//   - Rolling by size: when a group's uncompressed encoded bytes would pass roll_bytes, it is
//     split at row boundaries into part-...-0, part-...-1, ... in row order. Rolling by age is
//     the writer pool's job: it calls Flush() every flush_interval, and every Flush() closes
//     every file it writes.
//   - Every file is written under a dot-temp name in its directory, fsynced, renamed, and then
//     each touched directory is fsynced once, so a reader (who ignores dot files, as Spark and
//     Hive do) never sees half a file.
// On error Flush() returns kUnavailable (ENOSPC, EDQUOT, EIO) or kIoError, removes its temp
// files and keeps the rows buffered, so the next Flush() writes them again. Files already renamed
// by the failed flush are rewritten with the same names, so nothing is duplicated.
// Open() removes temp files left behind by a crash: one sink instance per path.
//
// Thread-compatible: one writer thread, as every Sink.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "config/config.h"
#include "sink/sink.h"
#include "window/row.h"

struct ZSTD_CCtx_s;

namespace turnstiled::sink {

class FileSink final : public Sink {
 public:
  explicit FileSink(config::SinkConfig config);
  ~FileSink() override;
  FileSink(const FileSink&) = delete;
  FileSink& operator=(const FileSink&) = delete;

  base::Status Open() override;
  base::Status Write(std::span<const window::WindowRow> rows) override;
  base::Status Flush() override;
  base::Status Close() override;

  size_t buffered_rows() const { return buffer_.size(); }

 private:
  // Writes one (station, date) group, rows [begin, end) of `order`, as staged files.
  struct Staged;
  base::Status StageGroup(const std::vector<size_t>& order, size_t begin, size_t end,
                          std::vector<Staged>* staged, std::vector<std::string>* dirs);

  // Constant after construction.
  const config::SinkConfig config_;
  const std::string extension_;
  ZSTD_CCtx_s* const cctx_;  // owned; null without compression

  std::vector<window::WindowRow> buffer_;
  std::string scratch_;
  // Whether the current flush fsyncs each file (few files) or syncs the filesystem (many).
  static constexpr size_t kSyncEachBelowFiles = 16;
  bool sync_each_ = true;
};

}  // namespace turnstiled::sink
