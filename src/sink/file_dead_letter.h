// FileDeadLetter: dropped records as JSON lines (format in dead_letter.h), appended to
//
//   <path>/dead-letter.jsonl
//
// One file per path, opened O_APPEND and never truncated: a restart keeps appending, and every
// line is written with a single write(2), so lines from one process never interleave. Rotation
// and retention are left to the operator (logrotate with copytruncate works, as O_APPEND writes
// follow the truncation). Flush() fsyncs and reports the first write error since the last Flush.
//
// Thread-safe: a mutex serialises writers. It is the exception path, so the lock is cheap enough.
#pragma once

#include <mutex>
#include <string>

#include "sink/dead_letter.h"

namespace turnstiled::sink {

// The JSON line for one entry, with its trailing '\n'.
std::string FormatDeadLetter(const DeadLetterEntry& entry);

class FileDeadLetter final : public DeadLetter {
 public:
  static base::Result<std::unique_ptr<FileDeadLetter>> Open(const std::string& dir);
  ~FileDeadLetter() override;
  FileDeadLetter(const FileDeadLetter&) = delete;
  FileDeadLetter& operator=(const FileDeadLetter&) = delete;

  void Write(const DeadLetterEntry& entry) override;
  base::Status Flush() override;

  const std::string& path() const { return path_; }

 private:
  FileDeadLetter(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}

  const std::string path_;
  const int fd_;
  std::mutex mu_;
  base::Status error_;  // guarded by mu_
};

}  // namespace turnstiled::sink
