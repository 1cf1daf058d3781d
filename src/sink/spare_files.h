// SpareFiles: empty files made ahead in a folder, on a thread of their own, for a flush to
// write and rename instead of creating its files while a closed window waits.
//
// Creating a file is the slow part of a small flush. ext4 looks for a free inode that was not
// freed in the last few seconds, and on a filesystem where many files were just deleted (a lake
// whose old files are being removed, the run before) one create took 100 to 260 us instead of
// 13 to 25 us on the test machine: several of them per flush, on the path from a window's close
// to its acknowledgement. A spare is created here beforehand; the flush writes it and renames it
// into its partition folder (rename(2) within one filesystem may change folders).
//
//   SpareFiles spares(lake_root, 0640, 32, "spare-lake");
//   spares.Start();
//   if (auto s = spares.Take()) file = StagedFile::Adopt(s->path, open(s->path, O_WRONLY), ...);
//   spares.Stop();  // removes the spares not taken
//
// A spare is named like a staged file's temporary (`.spare-<pid>-<n>.tmp`, a dot file that
// readers skip), so one left by a process that died is removed by the next Open() of a sink on
// that folder (IsAbandonedTempName). A spare that cannot be made is simply not there: the
// caller creates its file itself, and reports any error that way.
//
// Thread-safe: Take() from any thread; Start() and Stop() from the owner's.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace turnstiled::sink {

class SpareFiles {
 public:
  // Keeps up to `target` spares in `dir`, each created with `mode` (whatever the umask).
  SpareFiles(std::string dir, int mode, size_t target, std::string thread_name);
  ~SpareFiles();
  SpareFiles(const SpareFiles&) = delete;
  SpareFiles& operator=(const SpareFiles&) = delete;

  // An empty file, closed: no file stays open for writing between flushes (an administrator's
  // `mount -o remount,ro` of the lake's disk fails while one is). The caller owns it.
  struct Spare {
    std::string path;
  };
  // The oldest spare, if one is ready; asks for another to be made.
  std::optional<Spare> Take();
  // While paused, no spare is made. A flush pauses the maker: a file being created holds its
  // folder, and the flush's renames out of that folder waited for it (up to 9 ms on the test
  // machine, where a rename alone takes well under 1 ms). Pauses nest.
  void Pause();
  void Resume();
  // Pause() until the guard goes.
  class Paused {
   public:
    explicit Paused(SpareFiles* s) : s_(s) {
      if (s_ != nullptr) s_->Pause();
    }
    ~Paused() {
      if (s_ != nullptr) s_->Resume();
    }
    Paused(const Paused&) = delete;
    Paused& operator=(const Paused&) = delete;

   private:
    SpareFiles* const s_;
  };
  // Starts the thread that makes spares. REQUIRES: not started.
  void Start();
  // Stops the thread, then removes every spare not taken. Idempotent.
  void Stop();
  // Spares ready now (tests).
  size_t ready() const;
  // Spares made since construction (tests).
  size_t made() const;

 private:
  void Run();

  // Constant after construction.
  const std::string dir_;
  const int mode_;
  const size_t target_;
  const std::string thread_name_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Spare> ready_;  // guarded by mu_; oldest first
  bool stop_ = false;        // guarded by mu_
  int paused_ = 0;           // guarded by mu_
  size_t made_ = 0;          // guarded by mu_
  std::thread thread_;
};

}  // namespace turnstiled::sink
