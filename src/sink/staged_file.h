// StagedFile: a file written under a temporary dot-name, then published by rename, so a reader
// sees either no file or the whole file, never a part of one.
//
//   auto f = StagedFile::Create(dir, cctx);   // dir/.part-<pid>-<n>.tmp
//   f->Append(bytes)...;                      // buffered; compressed when cctx is not null
//   f->Finish();                              // end of the zstd frame, write, fsync, close
//   f->Publish(dir + "/part-...csv");         // rename(2): replaces a file of that name
// The caller fsyncs the directory once after publishing all its files (SyncDirectory).
// A caller publishing many files at once may instead Finish(/*sync=*/false) each, then
// SyncFilesystem() once before the renames and once after: two syscalls instead of one fsync
// per file and per directory, with the same guarantee.
// A StagedFile that is destroyed before Publish() removes its temporary file, also on error.
//
// Errors: ENOSPC, EDQUOT and EIO are kUnavailable (space or a disk may come back; the writer
// pool retries), everything else kIoError.
//
// Thread-compatible. The ZSTD_CCtx is borrowed and must outlive the StagedFile; one file at a
// time may use it.
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

// True for the names StagedFile uses for its temporary files.
bool IsStagedTempName(std::string_view file_name);
// True for such a name whose writer process is gone (on this host): safe to remove.
bool IsAbandonedTempName(std::string_view file_name);

base::Status SyncDirectory(const std::string& dir);
// syncfs(2) on the filesystem holding `path` (a directory): every file written on it is durable.
base::Status SyncFilesystem(const std::string& path);

class StagedFile {
 public:
  // `mode`: the file's permissions, set whatever the umask.
  static base::Result<std::unique_ptr<StagedFile>> Create(const std::string& dir, ZSTD_CCtx_s* cctx,
                                                          int mode = 0640);
  ~StagedFile();
  StagedFile(const StagedFile&) = delete;
  StagedFile& operator=(const StagedFile&) = delete;

  base::Status Append(std::string_view bytes);
  // Ends the zstd frame, writes what is buffered, fsyncs (unless `sync` is false) and closes.
  base::Status Finish(bool sync = true);
  // REQUIRES: Finish() returned OK.
  base::Status Publish(const std::string& final_path);

  const std::string& temp_path() const { return temp_path_; }

 private:
  StagedFile(std::string temp_path, int fd, ZSTD_CCtx_s* cctx);
  base::Status WriteAll(std::string_view bytes);
  base::Status Compress(std::string_view bytes, bool end);

  const std::string temp_path_;
  int fd_;
  ZSTD_CCtx_s* const cctx_;  // borrowed; null for plain files
  std::string pending_;      // bytes not yet compressed or written
  std::string out_;          // compressor output buffer
  bool published_ = false;
};

}  // namespace turnstiled::sink
