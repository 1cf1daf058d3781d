#include "sink/file_dead_letter.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <filesystem>

#include "base/civil_time.h"
#include "sink/row_format.h"
#include "sink/staged_file.h"

namespace turnstiled::sink {

std::string FormatDeadLetter(const DeadLetterEntry& entry, size_t max_record_bytes) {
  const bool cut = entry.raw.size() > max_record_bytes;
  const std::string_view raw = cut ? entry.raw.substr(0, max_record_bytes) : entry.raw;
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
  const bool base64 = !IsValidUtf8(raw);
  if (base64) {
    line += '"';
    AppendBase64(raw, &line);
    line += '"';
  } else {
    AppendJsonString(raw, &line);
  }
  line += base64 ? ",\"raw_base64\":true" : ",\"raw_base64\":false";
  if (cut) {
    line += ",\"raw_truncated\":true,\"raw_bytes\":";
    line += std::to_string(entry.raw.size());
  }
  line += "}\n";
  return line;
}

namespace {
int OpenAppend(const std::string& path, int mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, mode);
  if (fd >= 0) ::fchmod(fd, static_cast<mode_t>(mode));  // whatever the umask
  return fd;
}
}  // namespace

base::Result<std::unique_ptr<FileDeadLetter>> FileDeadLetter::Open(
    const config::DeadLetterConfig& config) {
  const std::string& dir = config.path;
  if (dir.empty()) return base::Status::InvalidArgument("dead_letter: file type needs a path");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return ErrnoStatus("mkdir", dir, ec.value());
  ::chmod(dir.c_str(), static_cast<mode_t>(config.dir_mode));
  std::string path = dir + "/dead-letter.jsonl";
  const int fd = OpenAppend(path, config.file_mode);
  if (fd < 0) return ErrnoStatus("open", path, errno);
  struct stat st {};
  const size_t size = ::fstat(fd, &st) == 0 ? static_cast<size_t>(st.st_size) : 0;
  return std::unique_ptr<FileDeadLetter>(new FileDeadLetter(config, std::move(path), fd, size));
}

FileDeadLetter::~FileDeadLetter() { ::close(fd_); }

void FileDeadLetter::Rotate() {
  const std::string old = path_.substr(0, path_.size() - 6) + ".1.jsonl";
  if (::rename(path_.c_str(), old.c_str()) != 0) {
    if (error_.ok()) error_ = ErrnoStatus("rename", path_, errno);
    return;
  }
  const int fd = OpenAppend(path_, config_.file_mode);
  if (fd < 0) {
    if (error_.ok()) error_ = ErrnoStatus("open", path_, errno);
    return;
  }
  ::close(fd_);
  fd_ = fd;
  size_ = 0;
}

base::Status FileDeadLetter::Reopen() {
  std::lock_guard<std::mutex> lock(mu_);
  if (::fsync(fd_) != 0) return ErrnoStatus("fsync", path_, errno);
  const int fd = OpenAppend(path_, config_.file_mode);
  if (fd < 0) return ErrnoStatus("open", path_, errno);
  struct stat st {};
  ::close(fd_);
  fd_ = fd;
  size_ = ::fstat(fd_, &st) == 0 ? static_cast<size_t>(st.st_size) : 0;
  return {};
}

void FileDeadLetter::Write(const DeadLetterEntry& entry) {
  const std::string line =
      FormatDeadLetter(entry, static_cast<size_t>(std::max<int64_t>(1, config_.max_record_bytes)));
  std::lock_guard<std::mutex> lock(mu_);
  const auto half = static_cast<size_t>(config_.max_bytes / 2);
  if (size_ > 0 && size_ + line.size() > half) Rotate();
  if (line.size() > half) return;  // cannot fit even alone (max_record_bytes > max_bytes / 2)
  const ssize_t n = ::write(fd_, line.data(), line.size());
  if (n > 0) size_ += static_cast<size_t>(n);
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
