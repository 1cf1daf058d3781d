#include "sink/staged_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace turnstiled::sink {
namespace {

constexpr size_t kPendingBytes = 256 * 1024;
constexpr std::string_view kTempPrefix = ".part-";
constexpr std::string_view kSparePrefix = ".spare-";
constexpr std::string_view kTempSuffix = ".tmp";

std::atomic<uint64_t> temp_counter{0};

// The process's umask, from /proc/self/status (umask(2) can only read it by changing it, which
// races with other threads creating files). All bits set when it cannot be read.
mode_t ReadUmask() {
  const int fd = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 07777;
  char buf[4096];
  const ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
  ::close(fd);
  if (n <= 0) return 07777;
  buf[n] = '\0';
  const char* line = std::strstr(buf, "\nUmask:");
  if (line == nullptr) return 07777;
  return static_cast<mode_t>(std::strtoul(line + 7, nullptr, 8));
}

mode_t ProcessUmask() {
  static const mode_t umask = ReadUmask();
  return umask;
}

}  // namespace

base::Status ErrnoStatus(std::string_view op, const std::string& path, int err) {
  std::string msg(op);
  msg += ' ';
  msg += path;
  msg += ": ";
  msg += std::strerror(err);
  // Retryable: the disk may come back (space freed, remounted read-write, a transient I/O
  // error). Anything else (a path under a file, permission denied) needs a person.
  if (err == ENOSPC || err == EDQUOT || err == EIO || err == EROFS || err == EAGAIN ||
      err == EINTR || err == ENOMEM) {
    return base::Status::Unavailable(msg);
  }
  return base::Status::IoError(msg);
}

bool IsStagedTempName(std::string_view name) {
  return (name.starts_with(kTempPrefix) || name.starts_with(kSparePrefix)) &&
         name.ends_with(kTempSuffix);
}

bool IsAbandonedTempName(std::string_view name) {
  if (!IsStagedTempName(name)) return false;
  // .part-<pid>-<n>.tmp or .spare-<pid>-<n>.tmp: a file of a process that still runs (another
  // instance writing the same lake) is in use.
  name.remove_prefix(name.starts_with(kTempPrefix) ? kTempPrefix.size() : kSparePrefix.size());
  long pid = 0;
  for (char c : name) {
    if (c < '0' || c > '9') break;
    pid = pid * 10 + (c - '0');
    if (pid > 1L << 31) return true;
  }
  if (pid <= 0) return true;
  return ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

namespace {
// Opens the directory `path` and calls `sync` (fsync or syncfs) on it.
base::Status SyncDirectoryWith(const std::string& path, const char* op, int (*sync)(int)) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open", path, errno);
  const int rc = sync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return ErrnoStatus(op, path, err);
  return {};
}
}  // namespace

base::Status SyncDirectory(const std::string& dir) {
  return SyncDirectoryWith(dir, "fsync", ::fsync);
}

base::Status SyncFilesystem(const std::string& path) {
  return SyncDirectoryWith(path, "syncfs", ::syncfs);
}

namespace {
// dir/<prefix><pid>-<n>.tmp, unique within this process.
std::string TempPath(const std::string& dir, std::string_view prefix) {
  std::string path = dir;
  path += '/';
  path += prefix;
  path += std::to_string(::getpid());
  path += '-';
  path += std::to_string(temp_counter.fetch_add(1, std::memory_order_relaxed));
  path += kTempSuffix;
  return path;
}
}  // namespace

std::string SpareTempPath(const std::string& dir) { return TempPath(dir, kSparePrefix); }

base::Result<int> CreateTempFile(const std::string& path, int mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoStatus("create", path, errno);
  // The mode whatever the umask; a call saved per file where the umask keeps it anyway.
  if ((static_cast<mode_t>(mode) & ProcessUmask()) != 0) ::fchmod(fd, static_cast<mode_t>(mode));
  return fd;
}

base::Result<std::unique_ptr<StagedFile>> StagedFile::Create(const std::string& dir,
                                                             ZSTD_CCtx_s* cctx, int mode,
                                                             std::string* zstd_out) {
  if (cctx != nullptr && zstd_out == nullptr) {
    return base::Status::Internal("StagedFile: a compressed file needs an output buffer");
  }
  std::string path = TempPath(dir, kTempPrefix);
  auto fd = CreateTempFile(path, mode);
  if (!fd.ok()) return fd.status();
  return Adopt(std::move(path), *fd, cctx, zstd_out);
}

std::unique_ptr<StagedFile> StagedFile::Adopt(std::string temp_path, int fd, ZSTD_CCtx_s* cctx,
                                              std::string* zstd_out) {
  if (cctx != nullptr) ZSTD_CCtx_reset(cctx, ZSTD_reset_session_only);
  return std::unique_ptr<StagedFile>(new StagedFile(std::move(temp_path), fd, cctx, zstd_out));
}

StagedFile::StagedFile(std::string temp_path, int fd, ZSTD_CCtx_s* cctx, std::string* zstd_out)
    : temp_path_(std::move(temp_path)), fd_(fd), cctx_(cctx), out_(zstd_out) {}

StagedFile::~StagedFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!published_) ::unlink(temp_path_.c_str());
}

base::Status StagedFile::Append(std::string_view bytes) {
  pending_.append(bytes);
  if (pending_.size() < kPendingBytes) return {};
  base::Status s = cctx_ != nullptr ? Compress(pending_, false) : WriteAll(pending_);
  pending_.clear();
  return s;
}

base::Status StagedFile::Finish(bool sync) {
  base::Status s = cctx_ != nullptr ? Compress(pending_, true) : WriteAll(pending_);
  pending_.clear();
  if (!s.ok()) return s;
  if (sync && ::fsync(fd_) != 0) return ErrnoStatus("fsync", temp_path_, errno);
  const int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) return ErrnoStatus("close", temp_path_, errno);
  return {};
}

base::Status StagedFile::Publish(const std::string& final_path) {
  if (::rename(temp_path_.c_str(), final_path.c_str()) != 0) {
    return ErrnoStatus("rename", final_path, errno);
  }
  published_ = true;
  return {};
}

base::Status StagedFile::WriteAll(std::string_view bytes) {
  if (copy_ != nullptr) copy_->append(bytes);
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write", temp_path_, errno);
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

base::Status StagedFile::Compress(std::string_view bytes, bool end) {
  if (out_->size() < ZSTD_CStreamOutSize()) out_->resize(ZSTD_CStreamOutSize());
  ZSTD_inBuffer in{bytes.data(), bytes.size(), 0};
  const ZSTD_EndDirective mode = end ? ZSTD_e_end : ZSTD_e_continue;
  for (;;) {
    ZSTD_outBuffer out{out_->data(), out_->size(), 0};
    const size_t remaining = ZSTD_compressStream2(cctx_, &out, &in, mode);
    if (ZSTD_isError(remaining)) {
      return base::Status::Internal("zstd " + temp_path_ + ": " + ZSTD_getErrorName(remaining));
    }
    base::Status s = WriteAll(std::string_view(out_->data(), out.pos));
    if (!s.ok()) return s;
    const bool done = end ? remaining == 0 : in.pos == in.size;
    if (done) return {};
  }
}

}  // namespace turnstiled::sink
