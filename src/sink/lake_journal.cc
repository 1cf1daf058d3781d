#include "sink/lake_journal.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <random>

#include "base/crc32c.h"
#include "sink/staged_file.h"

namespace turnstiled::sink {
namespace {

constexpr char kMagic[4] = {'T', 'S', 'J', '2'};
constexpr size_t kCrcAt = 4;
constexpr size_t kLengthAt = 8;
constexpr size_t kGenerationAt = 16;
constexpr size_t kSequenceAt = 24;
constexpr size_t kHeaderBytes = 32;
constexpr size_t kChecked = kLengthAt;  // the CRC covers the header from here on, and the payload

uint64_t NewGeneration() {
  static std::atomic<uint64_t> counter{0};
  std::random_device rd;
  const uint64_t r = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  return r ^ (counter.fetch_add(1) * 0x9E3779B97F4A7C15ULL);
}

template <typename T>
T Load(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}
template <typename T>
void Put(std::string* out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out->append(b, sizeof(T));
}

// Reads fields off a payload, refusing to read past its end.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : rest_(bytes) {}
  template <typename T>
  bool Get(T* v) {
    if (rest_.size() < sizeof(T)) return false;
    std::memcpy(v, rest_.data(), sizeof(T));
    rest_.remove_prefix(sizeof(T));
    return true;
  }
  template <typename Len>
  bool GetBytes(std::string* out) {
    Len n = 0;
    if (!Get(&n) || rest_.size() < n) return false;
    out->assign(rest_.data(), static_cast<size_t>(n));
    rest_.remove_prefix(static_cast<size_t>(n));
    return true;
  }
  bool done() const { return rest_.empty(); }

 private:
  std::string_view rest_;
};

bool DecodePayload(std::string_view payload, JournalRecord* record) {
  Reader r(payload);
  if (!r.GetBytes<uint32_t>(&record->boot_id) || !r.Get(&record->written_ms)) return false;
  while (!r.done()) {
    JournalEntry e;
    uint8_t kind = 0;
    if (!r.Get(&kind) || !r.GetBytes<uint32_t>(&e.path)) return false;
    if (kind == static_cast<uint8_t>(JournalEntry::Kind::kFile)) {
      e.kind = JournalEntry::Kind::kFile;
      if (!r.GetBytes<uint64_t>(&e.content)) return false;
    } else if (kind == static_cast<uint8_t>(JournalEntry::Kind::kStale)) {
      e.kind = JournalEntry::Kind::kStale;
      uint8_t unsuffixed = 0;
      if (!r.GetBytes<uint32_t>(&e.extension) || !r.Get(&unsuffixed) || !r.Get(&e.first_part))
        return false;
      e.unsuffixed = unsuffixed != 0;
    } else {
      return false;
    }
    record->entries.push_back(std::move(e));
  }
  return true;
}

base::Status WriteAllAt(int fd, std::string_view bytes, uint64_t offset, const std::string& path) {
  while (!bytes.empty()) {
    const ssize_t n = ::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write", path, errno);
    }
    bytes.remove_prefix(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return {};
}

// The journal opened for writing, for one operation. Only the lock's read-only descriptor stays
// open between flushes: a file held open for writing would keep the lake's filesystem from being
// remounted read-only or unmounted.
class WriteFd {
 public:
  explicit WriteFd(const std::string& path)
      : fd_(::open(path.c_str(), O_WRONLY | O_CLOEXEC)), err_(errno) {}
  ~WriteFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  WriteFd(const WriteFd&) = delete;
  WriteFd& operator=(const WriteFd&) = delete;
  int fd() const { return fd_; }
  int error() const { return err_; }

 private:
  const int fd_;
  const int err_;
};

}  // namespace

void JournalRecordBuilder::Begin(std::string_view boot_id, int64_t written_ms) {
  buf_.clear();
  Put<uint32_t>(&buf_, static_cast<uint32_t>(boot_id.size()));
  buf_.append(boot_id);
  Put<int64_t>(&buf_, written_ms);
}

void JournalRecordBuilder::AddFile(std::string_view path, std::string_view content) {
  Put<uint8_t>(&buf_, static_cast<uint8_t>(JournalEntry::Kind::kFile));
  Put<uint32_t>(&buf_, static_cast<uint32_t>(path.size()));
  buf_.append(path);
  Put<uint64_t>(&buf_, content.size());
  buf_.append(content);
}

void JournalRecordBuilder::AddStale(std::string_view stem, std::string_view extension,
                                    bool unsuffixed, uint64_t first_part) {
  Put<uint8_t>(&buf_, static_cast<uint8_t>(JournalEntry::Kind::kStale));
  Put<uint32_t>(&buf_, static_cast<uint32_t>(stem.size()));
  buf_.append(stem);
  Put<uint32_t>(&buf_, static_cast<uint32_t>(extension.size()));
  buf_.append(extension);
  Put<uint8_t>(&buf_, unsuffixed ? 1 : 0);
  Put<uint64_t>(&buf_, first_part);
}

base::Result<std::unique_ptr<LakeJournal>> LakeJournal::Open(const std::string& path,
                                                             std::vector<JournalRecord>* records,
                                                             bool* cut, bool create) {
  records->clear();
  *cut = false;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
  if (fd < 0 && errno == ENOENT && !create) return base::Status::NotFound(path);
  if (fd < 0) return ErrnoStatus("open", path, errno);
  auto fail = [&](base::Status s) {
    ::close(fd);
    return s;
  };
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if (err == EWOULDBLOCK) {
      return fail(base::Status::IoError(
          "journal " + path +
          " is locked by another process: a sink's journal is its own, and two sinks of one "
          "process need paths of their own"));
    }
    return fail(ErrnoStatus("flock", path, err));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) return fail(ErrnoStatus("stat", path, errno));
  // Another process starting at the same moment may have taken this file for a gone process's
  // journal, locked it before we did, and removed it: then the path names another file, or
  // none, and this one must not be written.
  struct stat now {};
  if (::stat(path.c_str(), &now) != 0 || now.st_ino != st.st_ino || now.st_dev != st.st_dev) {
    ::close(fd);
    if (!create) return base::Status::NotFound(path);
    return Open(path, records, cut, create);
  }
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  std::string bytes(file_size, '\0');
  for (uint64_t done = 0; done < file_size;) {
    const ssize_t n = ::pread(fd, bytes.data() + done, file_size - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(ErrnoStatus("read", path, errno));
    if (n == 0) {
      bytes.resize(done);
      break;
    }
    done += static_cast<uint64_t>(n);
  }

  uint64_t good = 0;
  uint64_t generation = 0;
  while (bytes.size() - good >= kHeaderBytes) {
    const char* h = bytes.data() + good;
    if (std::memcmp(h, kMagic, 4) != 0) break;
    const uint64_t g = Load<uint64_t>(h + kGenerationAt);
    // A record of an earlier generation: written before the last Reset(), not part of this one.
    if (!records->empty() && g != generation) break;
    *cut = true;  // until it reads whole
    const uint64_t length = Load<uint64_t>(h + kLengthAt);
    if (length > bytes.size() - good - kHeaderBytes) break;
    const std::string_view checked(h + kChecked, kHeaderBytes - kChecked + length);
    if (base::Crc32c(checked) != Load<uint32_t>(h + kCrcAt)) break;
    JournalRecord record;
    record.sequence = Load<uint64_t>(h + kSequenceAt);
    if (!DecodePayload(std::string_view(h + kHeaderBytes, static_cast<size_t>(length)), &record)) {
      break;
    }
    *cut = false;
    generation = g;
    records->push_back(std::move(record));
    good += kHeaderBytes + length;
  }
  // A header cut short at the end of the file (a record that was being appended).
  if (!*cut && bytes.size() - good < kHeaderBytes) {
    *cut = std::any_of(bytes.begin() + static_cast<std::ptrdiff_t>(good), bytes.end(),
                       [](char c) { return c != '\0'; });
  }
  if (records->empty()) generation = NewGeneration();
  return std::unique_ptr<LakeJournal>(new LakeJournal(path, fd, good, file_size, generation));
}

LakeJournal::LakeJournal(std::string path, int fd, uint64_t size, uint64_t allocated,
                         uint64_t generation)
    : path_(std::move(path)),
      fd_(fd),
      size_(size),
      allocated_(allocated),
      generation_(generation) {}

LakeJournal::~LakeJournal() {
  if (fd_ >= 0) ::close(fd_);
}

base::Status LakeJournal::Append(std::string_view payload, uint64_t sequence) {
  char header[kHeaderBytes] = {};
  std::memcpy(header, kMagic, 4);
  const uint64_t length = payload.size();
  std::memcpy(header + kLengthAt, &length, 8);
  std::memcpy(header + kGenerationAt, &generation_, 8);
  std::memcpy(header + kSequenceAt, &sequence, 8);
  const uint32_t crc = base::Crc32c(
      payload, base::Crc32c(std::string_view(header + kChecked, kHeaderBytes - kChecked)));
  std::memcpy(header + kCrcAt, &crc, 4);

  const uint64_t at = size();
  const uint64_t total = kHeaderBytes + length;
  const WriteFd w(path_);
  if (w.fd() < 0) return ErrnoStatus("open", path_, w.error());
  const int fd = w.fd();
  base::Status s;
  iovec iov[2] = {{header, kHeaderBytes}, {const_cast<char*>(payload.data()), payload.size()}};
  uint64_t done = 0;
  while (s.ok() && done < total) {
    // The first call writes both; a short write is finished from where it stopped.
    ssize_t n;
    if (done == 0) {
      n = ::pwritev(fd, iov, 2, static_cast<off_t>(at));
    } else if (done < kHeaderBytes) {
      iovec rest[2] = {{header + done, kHeaderBytes - done}, iov[1]};
      n = ::pwritev(fd, rest, 2, static_cast<off_t>(at + done));
    } else {
      const size_t off = static_cast<size_t>(done - kHeaderBytes);
      n = ::pwrite(fd, payload.data() + off, payload.size() - off, static_cast<off_t>(at + done));
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) s = ErrnoStatus("write", path_, errno);
    if (n > 0) done += static_cast<uint64_t>(n);
  }
  if (s.ok() && ::fdatasync(fd) != 0) s = ErrnoStatus("fdatasync", path_, errno);
  if (at + done > allocated_) allocated_ = at + done;
  if (!s.ok()) {
    // What was written of the record must not be read as one.
    const char zeros[kHeaderBytes] = {};
    if (WriteAllAt(fd, std::string_view(zeros, kHeaderBytes), at, path_).ok()) ::fdatasync(fd);
    return s;
  }
  size_.store(at + total, std::memory_order_relaxed);
  return {};
}

base::Status LakeJournal::Reset() {
  generation_ = NewGeneration();
  if (allocated_ >= kHeaderBytes) {
    const WriteFd w(path_);
    if (w.fd() < 0) return ErrnoStatus("open", path_, w.error());
    const char zeros[kHeaderBytes] = {};
    base::Status s = WriteAllAt(w.fd(), std::string_view(zeros, kHeaderBytes), 0, path_);
    if (!s.ok()) return s;
    if (::fdatasync(w.fd()) != 0) return ErrnoStatus("fdatasync", path_, errno);
  }
  size_.store(0, std::memory_order_relaxed);
  return {};
}

base::Status LakeJournal::Fill(uint64_t bytes) {
  if (allocated_ >= bytes) return {};
  const WriteFd w(path_);
  if (w.fd() < 0) return ErrnoStatus("open", path_, w.error());
  const std::string zeros(1 << 20, '\0');
  for (uint64_t at = allocated_; at < bytes;) {
    const uint64_t n = std::min<uint64_t>(zeros.size(), bytes - at);
    base::Status s =
        WriteAllAt(w.fd(), std::string_view(zeros.data(), static_cast<size_t>(n)), at, path_);
    if (!s.ok()) return s;
    at += n;
    allocated_ = at;
  }
  if (::fsync(w.fd()) != 0) return ErrnoStatus("fsync", path_, errno);
  return {};
}

base::Status LakeJournal::Remove() {
  if (::unlink(path_.c_str()) != 0 && errno != ENOENT) return ErrnoStatus("unlink", path_, errno);
  ::close(fd_);
  fd_ = -1;
  size_.store(0, std::memory_order_relaxed);
  return SyncDirectory(path_.substr(0, path_.find_last_of('/')));
}

std::string CurrentBootId() {
  timespec real{};
  timespec boot{};
  ::clock_gettime(CLOCK_REALTIME, &real);
  ::clock_gettime(CLOCK_BOOTTIME, &boot);
  return "boot-time:" + std::to_string(static_cast<int64_t>(real.tv_sec) - boot.tv_sec);
}

bool SameBoot(std::string_view a, std::string_view b) {
  constexpr std::string_view kPrefix = "boot-time:";
  if (!a.starts_with(kPrefix) || !b.starts_with(kPrefix)) return !a.empty() && a == b;
  int64_t x = 0;
  int64_t y = 0;
  const auto [pa, ea] = std::from_chars(a.data() + kPrefix.size(), a.data() + a.size(), x);
  const auto [pb, eb] = std::from_chars(b.data() + kPrefix.size(), b.data() + b.size(), y);
  if (ea != std::errc() || eb != std::errc()) return false;
  return x - y <= kBootTimeSlackSeconds && y - x <= kBootTimeSlackSeconds;
}

}  // namespace turnstiled::sink
