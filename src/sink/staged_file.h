// StagedFile: a file written under a temporary dot-name, then published by rename, so a reader
// sees either no file or the whole file, never a part of one.
//
//   auto f = StagedFile::Create(dir, cctx, 0640, &out);  // dir/.part-<pid>-<n>.tmp
//   f->Append(bytes)...;                      // buffered; compressed when cctx is not null
//   f->Finish();                              // end of the zstd frame, write, fsync, close
//   f->Publish(dir + "/part-...csv");         // rename(2): replaces a file of that name
// The caller fsyncs the directory once after publishing all its files (SyncDirectory). The
// file sink instead Finish(/*sync=*/false)es each file and makes them durable through its
// journal (lake_journal.h).
// A StagedFile that is destroyed before Publish() removes its temporary file, also on error.
//
// Errors: ENOSPC, EDQUOT and EIO are kUnavailable (space or a disk may come back; the writer
// pool retries), everything else kIoError.
//
// Thread-compatible. The ZSTD_CCtx and its output buffer are borrowed and must outlive the
// StagedFile; one file at a time may use them.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"

struct ZSTD_CCtx_s;

namespace turnstiled::sink {

// The Status for a failed system call `op` on `path` with errno `err`: retryable (kUnavailable)
// for a full, read-only or failing disk, which may come back; permanent (kIoError) otherwise.
base::Status ErrnoStatus(std::string_view op, const std::string& path, int err);

// True for the names StagedFile and SpareFiles use for their temporary files.
bool IsStagedTempName(std::string_view file_name);
// True for such a name whose writer process is gone (on this host): safe to remove.
bool IsAbandonedTempName(std::string_view file_name);

// A new spare's name in `dir`: dir/.spare-<pid>-<n>.tmp (spare_files.h).
std::string SpareTempPath(const std::string& dir);
// Creates (or truncates) `path` for writing with `mode`, whatever the umask; returns its fd.
base::Result<int> CreateTempFile(const std::string& path, int mode);

base::Status SyncDirectory(const std::string& dir);
// syncfs(2) on the filesystem holding `path` (a directory): every file written on it is durable.
base::Status SyncFilesystem(const std::string& path);

class StagedFile {
 public:
  // `mode`: the file's permissions, set whatever the umask. `zstd_out`: the compressor's output
  // buffer, borrowed like the cctx and kept by the caller across files (a file sink writes
  // thousands of small files; a fresh 128 KiB buffer each cost more than compressing them).
  // Required when cctx is not null.
  static base::Result<std::unique_ptr<StagedFile>> Create(const std::string& dir, ZSTD_CCtx_s* cctx,
                                                          int mode = 0640,
                                                          std::string* zstd_out = nullptr);
  // A StagedFile of an empty temporary file the caller created (a spare, spare_files.h): it
  // takes `fd` and the file, and removes it unless published. Publish() may rename it into
  // another folder of the same filesystem.
  static std::unique_ptr<StagedFile> Adopt(std::string temp_path, int fd, ZSTD_CCtx_s* cctx,
                                           std::string* zstd_out = nullptr);
  ~StagedFile();
  StagedFile(const StagedFile&) = delete;
  StagedFile& operator=(const StagedFile&) = delete;

  // Appends every byte written to the file (compressed, when it is) to *copy as well: the
  // file sink's journal holds each file's whole content. Call before Append().
  void KeepCopy(std::string* copy) { copy_ = copy; }
  base::Status Append(std::string_view bytes);
  // Ends the zstd frame, writes what is buffered, fsyncs (unless `sync` is false) and closes.
  base::Status Finish(bool sync = true);
  // REQUIRES: Finish() returned OK.
  base::Status Publish(const std::string& final_path);

  const std::string& temp_path() const { return temp_path_; }

 private:
  StagedFile(std::string temp_path, int fd, ZSTD_CCtx_s* cctx, std::string* zstd_out);
  base::Status WriteAll(std::string_view bytes);
  base::Status Compress(std::string_view bytes, bool end);

  const std::string temp_path_;
  int fd_;
  ZSTD_CCtx_s* const cctx_;  // borrowed; null for plain files
  std::string pending_;      // bytes not yet compressed or written
  std::string* const out_;   // compressor output buffer; borrowed
  std::string* copy_ = nullptr;
  bool published_ = false;
};

}  // namespace turnstiled::sink
