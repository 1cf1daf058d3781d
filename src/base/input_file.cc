#include "base/input_file.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <cerrno>
#include <cstring>

#include "base/thread_name.h"

namespace turnstiled::base {

namespace {
constexpr uint8_t kZstdMagic[4] = {0x28, 0xB5, 0x2F, 0xFD};

ssize_t ReadFully(int fd, char* p, size_t n) {
  size_t got = 0;
  while (got < n) {
    const ssize_t r = ::read(fd, p + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  return static_cast<ssize_t>(got);
}
}  // namespace

// The chunks a read-ahead thread has handed over. Slot i % kSlots holds chunk i. The thread
// fills a slot by swapping it with the reader's buffer (only the partial line after the chunk
// is copied back), so a chunk is never copied.
struct LineChunkReader::Ahead {
  static constexpr uint64_t kSlots = kAheadSlots;
  static constexpr uint64_t kQuit = uint64_t{1} << 62;
  std::string slots[kSlots];
  size_t lens[kSlots] = {};
  // Chunks handed over, times 2, plus 1 once the thread has stopped at the end of the file or
  // an error: one word, so that the caller waits on one atomic.
  std::atomic<uint64_t> produced{0};
  // Chunks the caller has given back; kQuit when the reader is being destroyed.
  std::atomic<uint64_t> consumed{0};
  // The caller's own.
  uint64_t taken = 0;    // chunks returned by Next()
  bool holding = false;  // the last one is still the caller's
};

Result<std::unique_ptr<LineChunkReader>> LineChunkReader::Open(const std::string& path,
                                                               const std::atomic<bool>* stop,
                                                               std::function<void()> idle,
                                                               bool read_ahead, Buffers* buffers) {
  // Non-blocking, so that opening a FIFO does not wait for a writer (the reads poll instead).
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return Status::IoError("cannot open " + path + ": " + std::strerror(errno));
  struct stat st {};
  const bool stream = ::fstat(fd, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode);
  if (!stream) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  uint8_t magic[4] = {};
  const ssize_t n = stream ? 0 : ::pread(fd, magic, sizeof magic, 0);
  ZSTD_DCtx* dctx = nullptr;
  if (n == 4 && std::memcmp(magic, kZstdMagic, 4) == 0) dctx = ZSTD_createDCtx();
  std::unique_ptr<LineChunkReader> reader(new LineChunkReader(path, fd, dctx, buffers));
  reader->stream_ = stream;
  reader->stop_ = stop;
  reader->idle_ = std::move(idle);
  if (read_ahead && !stream) reader->StartReadAhead();
  return reader;
}

void LineChunkReader::StartReadAhead() {
  ahead_ = std::make_unique<Ahead>();
  for (uint64_t i = 0; i < Ahead::kSlots; ++i) {
    std::string& slot = ahead_->slots[i];
    if (buffers_ != nullptr) slot = std::move(buffers_->slots[i]);
    if (slot.size() < buf_.size()) slot.resize(buf_.size());
  }
  ahead_thread_ = std::thread([this] {
    NameThisThread("read-ahead");
    ReadAheadLoop();
  });
}

void LineChunkReader::ReadAheadLoop() {
  Ahead& a = *ahead_;
  uint64_t made = 0;
  for (;;) {
    uint64_t back = a.consumed.load(std::memory_order_acquire);
    while (back < Ahead::kQuit && made - back == Ahead::kSlots) {
      a.consumed.wait(back, std::memory_order_acquire);
      back = a.consumed.load(std::memory_order_acquire);
    }
    if (back >= Ahead::kQuit) return;
    std::string_view chunk;
    if (!NextHere(&chunk)) {
      a.produced.store(made * 2 + 1, std::memory_order_release);
      a.produced.notify_one();
      return;
    }
    // The chunk is buf_[0, start_); what follows it is a partial line, which goes to the front
    // of the buffer that takes buf_'s place.
    const uint64_t i = made % Ahead::kSlots;
    std::string& slot = a.slots[i];
    std::swap(buf_, slot);
    const size_t tail = len_ - start_;
    if (buf_.size() < slot.size()) buf_.resize(slot.size());
    std::memcpy(buf_.data(), slot.data() + start_, tail);
    a.lens[i] = chunk.size();
    len_ = tail;
    start_ = 0;
    ++made;
    a.produced.store(made * 2, std::memory_order_release);
    a.produced.notify_one();
  }
}

bool LineChunkReader::NextAhead(std::string_view* chunk) {
  Ahead& a = *ahead_;
  if (a.holding) {
    a.holding = false;
    a.consumed.store(a.taken, std::memory_order_release);
    a.consumed.notify_one();
  }
  uint64_t p = a.produced.load(std::memory_order_acquire);
  while (p / 2 == a.taken && (p & 1) == 0) {
    a.produced.wait(p, std::memory_order_acquire);
    p = a.produced.load(std::memory_order_acquire);
  }
  if (p / 2 == a.taken) return false;  // the end; status_ is final
  const uint64_t i = a.taken % Ahead::kSlots;
  *chunk = std::string_view(a.slots[i].data(), a.lens[i]);
  ++a.taken;
  a.holding = true;
  return true;
}

ssize_t LineChunkReader::Read(char* p, size_t n) {
  if (!stream_) return ReadFully(fd_, p, n);
  for (;;) {
    if (stop_ != nullptr && stop_->load(std::memory_order_relaxed)) return 0;
    const ssize_t r = ::read(fd_, p, n);
    if (r > 0) return r;
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return -1;
    // Nothing yet. A FIFO also reads 0 before its first writer has come: it has ended only
    // once a writer has come and gone, which poll() reports as POLLHUP.
    pollfd pfd{fd_, POLLIN, 0};
    const int ready = ::poll(&pfd, 1, 100);
    if (ready < 0 && errno != EINTR) return -1;
    if (ready > 0 && (pfd.revents & POLLIN) == 0 && (pfd.revents & (POLLHUP | POLLERR)) != 0) {
      return 0;
    }
    if (ready == 0 && idle_) idle_();
  }
}

LineChunkReader::LineChunkReader(std::string path, int fd, ZSTD_DCtx_s* dctx, Buffers* buffers)
    : path_(std::move(path)), fd_(fd), dctx_(dctx), buffers_(buffers) {
  if (buffers_ != nullptr) {
    buf_ = std::move(buffers_->buf);
    raw_ = std::move(buffers_->raw);
  }
  // Only ever grown: a buffer that grew for a very long line keeps its size.
  if (buf_.size() < 2 * kChunkBytes) buf_.resize(2 * kChunkBytes);
  if (dctx_ != nullptr && raw_.size() < ZSTD_DStreamInSize() * 4) {
    raw_.resize(ZSTD_DStreamInSize() * 4);
  }
}

LineChunkReader::~LineChunkReader() {
  if (ahead_thread_.joinable()) {
    ahead_->consumed.store(Ahead::kQuit, std::memory_order_release);
    ahead_->consumed.notify_one();
    ahead_thread_.join();
  }
  if (buffers_ != nullptr) {
    buffers_->buf = std::move(buf_);
    buffers_->raw = std::move(raw_);
    if (ahead_) {
      for (uint64_t i = 0; i < Ahead::kSlots; ++i) buffers_->slots[i] = std::move(ahead_->slots[i]);
    }
  }
  if (dctx_ != nullptr) ZSTD_freeDCtx(dctx_);
  ::close(fd_);
}

bool LineChunkReader::Fill() {
  if (len_ == buf_.size()) buf_.resize(buf_.size() * 2);  // one very long line
  char* out = buf_.data() + len_;
  const size_t room = buf_.size() - len_;
  if (dctx_ == nullptr) {
    if (eof_) return false;
    const ssize_t r = Read(out, room);
    if (r < 0) {
      status_ = Status::IoError("read " + path_ + ": " + std::strerror(errno));
      return false;
    }
    if (stream_ ? r == 0 : static_cast<size_t>(r) < room) eof_ = true;
    len_ += static_cast<size_t>(r);
    return r > 0;
  }
  ZSTD_outBuffer ob{out, room, 0};
  while (ob.pos == 0) {
    if (raw_pos_ == raw_len_ && !eof_) {
      const ssize_t r = Read(raw_.data(), raw_.size());
      if (r < 0) {
        status_ = Status::IoError("read " + path_ + ": " + std::strerror(errno));
        return false;
      }
      if (stream_ ? r == 0 : static_cast<size_t>(r) < raw_.size()) eof_ = true;
      raw_pos_ = 0;
      raw_len_ = static_cast<size_t>(r);
    }
    // With all the input taken, zstd may still hold decoded bytes it had no room to hand
    // over (a frame without a checksum leaves no input behind them): it is called again with
    // none until it says the frame is complete.
    if (raw_pos_ == raw_len_ && zstd_frame_done_) return false;
    const bool more_input = raw_pos_ < raw_len_;
    ZSTD_inBuffer ib{raw_.data(), raw_len_, raw_pos_};
    const size_t rc = ZSTD_decompressStream(dctx_, &ob, &ib);
    raw_pos_ = ib.pos;
    if (ZSTD_isError(rc)) {
      status_ = Status::IoError("zstd " + path_ + ": " + ZSTD_getErrorName(rc));
      return false;
    }
    zstd_frame_done_ = rc == 0;
    if (!more_input && ob.pos == 0) {
      // Nothing held back and nothing more to read: the input stopped part way through a frame.
      if (stop_ != nullptr && stop_->load(std::memory_order_relaxed)) return false;
      status_ =
          Status::IoError("zstd " + path_ + ": the file ends inside a zstd frame (truncated)");
      return false;
    }
  }
  len_ += ob.pos;
  return true;
}

bool LineChunkReader::NextHere(std::string_view* chunk) {
  if (!status_.ok()) return false;
  // Move the unreturned tail (a partial line) to the front.
  if (start_ > 0) {
    std::memmove(buf_.data(), buf_.data() + start_, len_ - start_);
    len_ -= start_;
    start_ = 0;
  }
  size_t scanned = 0;
  for (;;) {
    if (stream_ || len_ >= kChunkBytes || eof_ || len_ == buf_.size()) {
      // Enough bytes (or no more to come, or a stream's lines so far): cut after the last
      // newline.
      const void* nl = nullptr;
      for (size_t i = len_; i > scanned; --i) {
        if (buf_[i - 1] == '\n') {
          nl = buf_.data() + i - 1;
          break;
        }
      }
      if (nl != nullptr) {
        const size_t end = static_cast<size_t>(static_cast<const char*>(nl) - buf_.data()) + 1;
        *chunk = std::string_view(buf_.data(), end);
        start_ = end;
        return true;
      }
      scanned = len_;
    }
    if (!Fill()) {
      if (!status_.ok()) return false;
      if (len_ == 0) return false;
      *chunk = std::string_view(buf_.data(), len_);  // last line without '\n'
      start_ = len_;
      return true;
    }
  }
}

Result<std::string> ReadWholeFile(const std::string& path) {
  auto reader = LineChunkReader::Open(path);
  if (!reader.ok()) return reader.status();
  std::string out;
  std::string_view chunk;
  while ((*reader)->Next(&chunk)) out.append(chunk);
  if (!(*reader)->status().ok()) return (*reader)->status();
  return out;
}

}  // namespace turnstiled::base
