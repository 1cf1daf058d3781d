#include "sink/lake_journal.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/crc32c.h"
#include "sink/staged_file.h"

namespace turnstiled::sink {
namespace {

constexpr char kMagic[4] = {'T', 'S', 'J', '1'};
constexpr size_t kHeaderBytes = 4 + 8 + 4;
constexpr size_t kLengthAt = 4;
constexpr size_t kCrcAt = 12;

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

}  // namespace

void JournalRecordBuilder::Begin(std::string_view boot_id, int64_t written_ms) {
  buf_.assign(kHeaderBytes, '\0');
  std::memcpy(buf_.data(), kMagic, 4);
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

std::string_view JournalRecordBuilder::Finish() {
  const uint64_t length = buf_.size() - kHeaderBytes;
  const uint32_t crc = base::Crc32c(std::string_view(buf_).substr(kHeaderBytes));
  std::memcpy(buf_.data() + kLengthAt, &length, 8);
  std::memcpy(buf_.data() + kCrcAt, &crc, 4);
  return buf_;
}

base::Result<std::unique_ptr<LakeJournal>> LakeJournal::Open(const std::string& path,
                                                             std::vector<JournalRecord>* records,
                                                             uint64_t* ignored_bytes) {
  records->clear();
  *ignored_bytes = 0;
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
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
          " is locked by another process: each sink needs a path of its own, which no other "
          "turnstiled process writes"));
    }
    return fail(ErrnoStatus("flock", path, err));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) return fail(ErrnoStatus("stat", path, errno));
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
  while (bytes.size() - good >= kHeaderBytes) {
    const char* h = bytes.data() + good;
    uint64_t length = 0;
    uint32_t crc = 0;
    std::memcpy(&length, h + kLengthAt, 8);
    std::memcpy(&crc, h + kCrcAt, 4);
    if (std::memcmp(h, kMagic, 4) != 0 || length > bytes.size() - good - kHeaderBytes) break;
    const std::string_view payload(h + kHeaderBytes, static_cast<size_t>(length));
    if (base::Crc32c(payload) != crc) break;
    JournalRecord record;
    if (!DecodePayload(payload, &record)) break;
    records->push_back(std::move(record));
    good += kHeaderBytes + length;
  }
  *ignored_bytes = file_size - good;
  if (good < file_size) {
    if (::ftruncate(fd, static_cast<off_t>(good)) != 0 || ::fsync(fd) != 0) {
      return fail(ErrnoStatus("truncate", path, errno));
    }
  }
  return std::unique_ptr<LakeJournal>(new LakeJournal(path, fd, good));
}

LakeJournal::LakeJournal(std::string path, int fd, uint64_t size)
    : path_(std::move(path)), fd_(fd), size_(size) {}

LakeJournal::~LakeJournal() {
  if (fd_ >= 0) ::close(fd_);
}

base::Status LakeJournal::Append(std::string_view record) {
  base::Status s = WriteAllAt(fd_, record, size_, path_);
  if (s.ok() && ::fdatasync(fd_) != 0) s = ErrnoStatus("fdatasync", path_, errno);
  if (!s.ok()) {
    // What was written of the record must not be read as one: cut it off. A failure here
    // leaves a tail that fails its checksum, which Open() cuts off too.
    if (::ftruncate(fd_, static_cast<off_t>(size_)) == 0) ::fdatasync(fd_);
    return s;
  }
  size_ += record.size();
  return {};
}

base::Status LakeJournal::Reset() {
  if (size_ == 0) return {};
  if (::ftruncate(fd_, 0) != 0) return ErrnoStatus("truncate", path_, errno);
  if (::fsync(fd_) != 0) return ErrnoStatus("fsync", path_, errno);
  size_ = 0;
  return {};
}

base::Status LakeJournal::Remove() {
  if (::unlink(path_.c_str()) != 0 && errno != ENOENT) return ErrnoStatus("unlink", path_, errno);
  ::close(fd_);
  fd_ = -1;
  size_ = 0;
  return SyncDirectory(path_.substr(0, path_.find_last_of('/')));
}

std::string CurrentBootId() {
  const int fd = ::open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  char buf[64];
  const ssize_t n = ::read(fd, buf, sizeof(buf));
  ::close(fd);
  if (n <= 0) return {};
  std::string id(buf, static_cast<size_t>(n));
  while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
  return id;
}

}  // namespace turnstiled::sink
