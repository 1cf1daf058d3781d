// LineChunkReader: reads a plain or zstd-compressed (.zst) text file as chunks of whole lines.
//
// Each chunk ends just after a '\n' (the last one may lack it at end of file), so a caller can
// split it with memchr and never sees half a line. Chunks are kChunkBytes to twice that long; a
// single line longer than that is returned whole. A view returned by Next() is valid until the
// following call. Compression is detected by the zstd magic number, not the file name.
//
// With `read_ahead`, a regular file is read (and decompressed) on a thread of its own, a few
// chunks ahead of the caller, so that decompression overlaps the caller's work on the chunk
// before. The caller's side stays the same: one chunk at a time, valid until the next call.
// The hand-over is two atomic counters, per chunk (128 to 256 KiB), never per line.
//
// A FIFO, pipe or terminal is a stream: its lines are returned as they arrive (a chunk is cut
// after the last whole line read so far, not only every kChunkBytes), and the reader waits for
// them in short polls, so that a stop is seen (Next() returns false) and `idle` is called
// while nothing comes.
//
// Thread-compatible: one reader per thread (its read-ahead thread is its own).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "base/status.h"

struct ZSTD_DCtx_s;

namespace turnstiled::base {

class LineChunkReader {
 public:
  // Small enough that the buffers of a reader and its read-ahead stay within a core's cache
  // and take few pages to fault in: with 1 MiB the buffers were 10 MiB, which cost a run
  // 2,500 page faults and about 4 ms of CPU even for a file of three lines.
  static constexpr size_t kChunkBytes = 1 << 17;
  static constexpr size_t kAheadSlots = 4;

  // The memory a reader reads into, about 1.3 MiB with read-ahead. A caller that reads many
  // files one after another passes the same Buffers to each Open(): a reader takes them, and
  // gives them back when it is destroyed. Fresh memory costs a page fault per 4 KiB on its
  // first touch, and that was a fifth of the CPU time of a file run with a cheap sink.
  struct Buffers {
    std::string buf;
    std::string raw;
    std::string slots[kAheadSlots];
  };

  // `stop` (may be null): a waiting stream gives up when it is set. `idle` (may be empty):
  // called about every 100 ms while a stream has nothing to read. `read_ahead`: read a regular
  // file on a thread of its own (a stream is always read on the caller's thread, as its lines
  // arrive). `buffers` (may be null): memory to read into, given back on destruction; it must
  // outlive the reader.
  static Result<std::unique_ptr<LineChunkReader>> Open(const std::string& path,
                                                       const std::atomic<bool>* stop = nullptr,
                                                       std::function<void()> idle = {},
                                                       bool read_ahead = false,
                                                       Buffers* buffers = nullptr);
  ~LineChunkReader();
  LineChunkReader(const LineChunkReader&) = delete;
  LineChunkReader& operator=(const LineChunkReader&) = delete;

  // Sets *chunk to the next run of whole lines. Returns false at end of file or on error;
  // status() tells which (REQUIRES for status(): Next() has returned false).
  bool Next(std::string_view* chunk) { return ahead_ ? NextAhead(chunk) : NextHere(chunk); }
  const Status& status() const { return status_; }
  bool compressed() const { return dctx_ != nullptr; }
  bool reads_ahead() const { return ahead_ != nullptr; }
  const std::string& path() const { return path_; }

 private:
  struct Ahead;

  LineChunkReader(std::string path, int fd, ZSTD_DCtx_s* dctx, Buffers* buffers);
  // Next() on the caller's thread (and the read-ahead thread's loop).
  bool NextHere(std::string_view* chunk);
  // Next() from the chunks the read-ahead thread has handed over.
  bool NextAhead(std::string_view* chunk);
  void StartReadAhead();
  void ReadAheadLoop();
  // Appends at least some bytes to buf_ unless at EOF. Returns false at EOF or on error.
  bool Fill();
  // Reads up to n bytes into p: all of them from a file, what has arrived from a stream.
  // 0 at end of input (or a stop), -1 on error.
  ssize_t Read(char* p, size_t n);

  const std::string path_;
  int fd_;
  bool stream_ = false;
  const std::atomic<bool>* stop_ = nullptr;
  std::function<void()> idle_;
  ZSTD_DCtx_s* dctx_;  // null for plain files
  std::string raw_;    // compressed input (zstd only)
  size_t raw_pos_ = 0;
  size_t raw_len_ = 0;
  bool zstd_frame_done_ = true;  // the last ZSTD_decompressStream() ended a frame, fully flushed
  bool eof_ = false;
  std::string buf_;  // decoded bytes; [start_, len_) not yet returned
  size_t start_ = 0;
  size_t len_ = 0;
  Status status_;  // with read-ahead: written by its thread until it reports the end
  std::unique_ptr<Ahead> ahead_;
  std::thread ahead_thread_;
  Buffers* const buffers_;  // where the memory goes back to; null: freed
};

// Reads a whole file (decompressing .zst) into memory. For tests and tools, not the hot path.
Result<std::string> ReadWholeFile(const std::string& path);

}  // namespace turnstiled::base
