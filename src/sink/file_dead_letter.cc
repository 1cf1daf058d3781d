#include "sink/file_dead_letter.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <filesystem>

#include "base/civil_time.h"
#include "sink/row_format.h"
#include "sink/staged_file.h"

namespace turnstiled::sink {

std::string FormatDeadLetter(const DeadLetterEntry& entry) {
  std::string line = "{\"reason\":";
  AppendJsonString(entry.reason, &line);
  line += ",\"topic\":";
  AppendJsonString(entry.topic, &line);
  line += ",\"partition\":";
  line += std::to_string(entry.partition);
  line += ",\"offset\":";
  line += std::to_string(entry.offset);
  if (entry.event_ms != INT64_MIN) {
    line += ",\"event_time\":\"";
    base::AppendIsoUtc(entry.event_ms, &line);
    line += '"';
  }
  line += ",\"raw\":";
  const bool base64 = !IsValidUtf8(entry.raw);
  if (base64) {
    line += '"';
    AppendBase64(entry.raw, &line);
    line += '"';
  } else {
    AppendJsonString(entry.raw, &line);
  }
  line += base64 ? ",\"raw_base64\":true}\n" : ",\"raw_base64\":false}\n";
  return line;
}

base::Result<std::unique_ptr<FileDeadLetter>> FileDeadLetter::Open(const std::string& dir) {
  if (dir.empty()) return base::Status::InvalidArgument("dead_letter: file type needs a path");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return ErrnoStatus("mkdir", dir, ec.value());
  std::string path = dir + "/dead-letter.jsonl";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus("open", path, errno);
  return std::unique_ptr<FileDeadLetter>(new FileDeadLetter(std::move(path), fd));
}

FileDeadLetter::~FileDeadLetter() { ::close(fd_); }

void FileDeadLetter::Write(const DeadLetterEntry& entry) {
  const std::string line = FormatDeadLetter(entry);
  std::lock_guard<std::mutex> lock(mu_);
  const ssize_t n = ::write(fd_, line.data(), line.size());
  if (n == static_cast<ssize_t>(line.size()) || !error_.ok()) return;
  error_ = n < 0 ? ErrnoStatus("write", path_, errno)
                 : base::Status::Unavailable("write " + path_ + ": short write");
}

base::Status FileDeadLetter::Flush() {
  std::lock_guard<std::mutex> lock(mu_);
  base::Status s = std::move(error_);
  error_ = {};
  if (!s.ok()) return s;
  if (::fsync(fd_) != 0) return ErrnoStatus("fsync", path_, errno);
  return {};
}

}  // namespace turnstiled::sink
