// LakeJournal: one file of the file sink's write-ahead journal, so that a flush costs one small
// synced write instead of an fsync per lake file and per folder.
//
// A flush writes its lake files (temp name, rename; no fsync), then appends one record holding
// each file's relative path and whole content, and the stale parts it removed, and fdatasyncs.
// Only then is the flush acknowledged. The sink keeps two such files and writes to one at a
// time; the other is emptied in the background once a syncfs(2) has made the lake files of its
// records durable (FileSink).
//
//   LakeJournal::Open(path, &r)  creates or opens the file, takes an exclusive flock, reads
//                                its records. Between writes the file is open read-only (for
//                                the lock), so the lake's filesystem can still be remounted
//                                read-only or unmounted
//   Append(payload)              one write, fdatasync
//   Reset()                      empties it: a new generation, its first header zeroed
//   Fill(bytes)                  writes zeros up to `bytes`, so later appends overwrite
//                                allocated blocks and fdatasync has no metadata to commit
//   Remove()                     unlinks it (a clean Close())
//
// What a crash leaves:
//   - The process killed (kill -9, OOM): the kernel still holds every file written, so the
//     lake is as the last flush left it, and a record that is cut was never acknowledged.
//   - The machine stopped (power, kernel panic): files written since the last sync may be
//     missing, empty or old. Each record holds the boot it was written in (CurrentBootId());
//     when a record of another boot is found at Open(), the
//     sink writes every file of it whose content differs on disk again. Records of this boot
//     need no replay, so a file another instance of the group has written since is not touched.
//
// Record: a 32-byte header ("TSJ2", u32 CRC-32C of the rest of the record, u64 payload length,
// u64 generation, u64 sequence number), then the payload: u32 + boot id, i64 wall time (ms),
// then entries to its end: u8 kind, u32 + relative path, and for a file u64 + content, for
// stale parts u32 + extension, u8 unsuffixed, u64 first part. Little-endian. Records are read
// from the start while each is whole and of the first one's generation: what follows (zeros, a
// cut record, records of before the last Reset) is not part of the journal.
//
// Thread-compatible. size() may be read from any thread.
#pragma once

#include <atomic>
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
  uint64_t sequence = 0;
  std::string boot_id;
  int64_t written_ms = 0;
  std::vector<JournalEntry> entries;
};

// Builds one record's payload in a buffer the caller keeps across flushes.
class JournalRecordBuilder {
 public:
  void Begin(std::string_view boot_id, int64_t written_ms);
  void AddFile(std::string_view path, std::string_view content);
  void AddStale(std::string_view stem, std::string_view extension, bool unsuffixed,
                uint64_t first_part);
  std::string_view payload() const { return buf_; }

 private:
  std::string buf_;
};

class LakeJournal {
 public:
  // Reads its records into *records, in order, and sets *cut to whether the last was followed
  // by a cut or damaged record of the same generation (a write that was never acknowledged).
  // Fails with kIoError when another process holds the lock (one journal, one process), and
  // with kNotFound when the file does not exist and `create` is false.
  static base::Result<std::unique_ptr<LakeJournal>> Open(const std::string& file_path,
                                                         std::vector<JournalRecord>* records,
                                                         bool* cut, bool create = true);
  ~LakeJournal();
  LakeJournal(const LakeJournal&) = delete;
  LakeJournal& operator=(const LakeJournal&) = delete;

  // Appends a record with `payload` and sequence number `sequence`, and fdatasyncs. On error
  // the record is not part of the journal (its header is zeroed where that still works).
  base::Status Append(std::string_view payload, uint64_t sequence);
  base::Status Reset();
  base::Status Fill(uint64_t bytes);
  base::Status Remove();

  // Bytes of records.
  uint64_t size() const { return size_.load(std::memory_order_relaxed); }
  // Bytes the file has, records or not (written zeros included).
  uint64_t allocated() const { return allocated_; }
  const std::string& path() const { return path_; }

 private:
  LakeJournal(std::string path, int fd, uint64_t size, uint64_t allocated, uint64_t generation);

  const std::string path_;
  int fd_;  // read-only, holding the lock; each write opens the file for itself
  std::atomic<uint64_t> size_;
  uint64_t allocated_;
  uint64_t generation_;
};

// Which boot of the machine this is: "boot-time:<s>", the wall-clock second it booted
// (CLOCK_REALTIME - CLOCK_BOOTTIME). Not the kernel's boot_id: /proc/sys is hidden under the
// systemd unit's ProcSubset=pid. NTP slewing moves both clocks alike; a step of the wall clock
// moves it, so ids within kBootTimeSlackSeconds count as the same boot.
std::string CurrentBootId();
inline constexpr int64_t kBootTimeSlackSeconds = 30;
// Whether two boot ids name the same boot. An id of another form (a test's) must match exactly;
// an empty one matches nothing.
bool SameBoot(std::string_view a, std::string_view b);

}  // namespace turnstiled::sink
