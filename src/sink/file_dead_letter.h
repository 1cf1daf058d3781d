// FileDeadLetter: dropped records as JSON lines (format in dead_letter.h), appended to
//
//   <path>/dead-letter.jsonl      the current file
//   <path>/dead-letter.1.jsonl    the one before it
//
// Bounded (SPEC §5): a record longer than max_record_bytes is stored cut, with
// "raw_truncated":true and its full length in "raw_bytes"; when the current file would pass half
// of max_bytes it is renamed to dead-letter.1.jsonl (replacing the older one) and a new one is
// started, so the two never take more than max_bytes, and the dead letter cannot fill the disk
// the lake shares. Files are file_mode (0640: they hold raw input), folders dir_mode (0750).
// Every line is written with a single write(2), so lines never interleave. Reopen() starts a
// new file handle (SIGHUP, for logrotate). Flush() fsyncs and reports the first write error
// since the last Flush.
//
// Thread-safe: a mutex serialises writers. It is the exception path, so the lock is cheap enough.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include "sink/dead_letter.h"

namespace turnstiled::sink {

// The JSON line for one entry, with its trailing '\n'; `raw` cut past `max_record_bytes`.
std::string FormatDeadLetter(const DeadLetterEntry& entry, size_t max_record_bytes = SIZE_MAX);

class FileDeadLetter final : public DeadLetter {
 public:
  static base::Result<std::unique_ptr<FileDeadLetter>> Open(const config::DeadLetterConfig& config);
  ~FileDeadLetter() override;
  FileDeadLetter(const FileDeadLetter&) = delete;
  FileDeadLetter& operator=(const FileDeadLetter&) = delete;

  void Write(const DeadLetterEntry& entry) override;
  base::Status Flush() override;
  // Makes what was written durable, then writes to a fresh open of the path: after logrotate
  // renamed the file, new lines go to a new file of that name.
  base::Status Reopen() override;

  const std::string& path() const { return path_; }

 private:
  FileDeadLetter(const config::DeadLetterConfig& config, std::string path, int fd, size_t size)
      : config_(config), path_(std::move(path)), fd_(fd), size_(size) {}
  // REQUIRES: mu_ held. Moves the current file aside and starts a new one.
  void Rotate();

  const config::DeadLetterConfig config_;
  const std::string path_;
  std::mutex mu_;
  int fd_;              // guarded by mu_
  size_t size_;         // bytes in the current file; guarded by mu_
  base::Status error_;  // guarded by mu_
};

}  // namespace turnstiled::sink
