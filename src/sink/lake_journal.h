// LakeJournal: the file sink's write-ahead journal, so that a flush costs one sync of one file
// instead of an fsync per lake file and per folder.
//
// A flush writes its lake files (temp name, rename; no fsync), then appends one record holding
// each file's relative path and whole content, and the stale parts it removed, to
// <path>/.turnstiled-journal-<host>, and fdatasyncs that one file. Only then is the flush
// acknowledged. Now and then (FileSink: by size and age) the sink syncs its filesystem once and
// empties the journal: from then on the lake files themselves are durable.
//
//   LakeJournal::Open(path, &r)  creates or opens the file, takes an exclusive flock, reads
//                                its whole records and cuts off a damaged tail
//   Append(record)               one write at the end, fdatasync; cut back on error
//   Reset()                      empties it (after the lake is synced)
//   Remove()                     unlinks it (a clean Close())
//
// What a crash leaves:
//   - The process killed (kill -9, OOM): the kernel still holds every file written, so the
//     lake is as the last flush left it, and a record that is cut was never acknowledged.
//   - The machine stopped (power, kernel panic): files written since the last sync may be
//     missing, empty or old. Each record holds the boot id it was written in
//     (/proc/sys/kernel/random/boot_id); when a record of another boot is found at Open(), the
//     sink writes every file of it whose content differs on disk again. Records of this boot
//     need no replay, so a file another instance of the group has written since is not touched.
//
// Record: "TSJ1", u64 payload length, u32 CRC-32C of the payload, then the payload: u32 + boot
// id, i64 wall time (ms), then entries to its end: u8 kind, u32 + relative path, and for a file
// u64 + content, for stale parts u32 + extension, u8 unsuffixed, u64 first part. Little-endian.
//
// Thread-compatible: one writer thread, as every Sink.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace turnstiled::sink {

struct JournalEntry {
  enum class Kind : uint8_t { kFile = 1, kStale = 2 };
  Kind kind = Kind::kFile;
  std::string path;         // relative to the sink's path: a file, or the stem of a group's parts
  std::string content;      // kFile: the whole file as published
  std::string extension;    // kStale: <ext>, as ".csv.zst"
  bool unsuffixed = false;  // kStale: remove <stem><ext>
  uint64_t first_part = 0;  // kStale: remove <stem>-<n><ext> from n = first_part on
};

struct JournalRecord {
  std::string boot_id;
  int64_t written_ms = 0;
  std::vector<JournalEntry> entries;
};

// Builds one record's bytes in a buffer the caller keeps across flushes.
class JournalRecordBuilder {
 public:
  void Begin(std::string_view boot_id, int64_t written_ms);
  void AddFile(std::string_view path, std::string_view content);
  void AddStale(std::string_view stem, std::string_view extension, bool unsuffixed,
                uint64_t first_part);
  // The finished record: header filled in.
  std::string_view Finish();

 private:
  std::string buf_;
};

class LakeJournal {
 public:
  // Reads every whole record into *records, in order. Stops at the first record that is cut
  // or fails its checksum (a write that was never acknowledged), sets *ignored_bytes to what
  // follows it, and cuts the file there. Fails with kIoError when another process holds the
  // lock: two processes must not share a sink path.
  static base::Result<std::unique_ptr<LakeJournal>> Open(const std::string& file_path,
                                                         std::vector<JournalRecord>* records,
                                                         uint64_t* ignored_bytes);
  ~LakeJournal();
  LakeJournal(const LakeJournal&) = delete;
  LakeJournal& operator=(const LakeJournal&) = delete;

  // Appends `record` after the last whole one and fdatasyncs. On error, cuts the file back.
  base::Status Append(std::string_view record);
  base::Status Reset();
  base::Status Remove();

  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  LakeJournal(std::string path, int fd, uint64_t size);

  const std::string path_;
  int fd_;
  uint64_t size_;  // bytes of whole records
};

// The boot id of the running kernel; empty when it cannot be read (then every record found at
// Open() counts as from another boot).
std::string CurrentBootId();

}  // namespace turnstiled::sink
