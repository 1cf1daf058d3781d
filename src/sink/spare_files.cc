#include "sink/spare_files.h"

#include <unistd.h>

#include <chrono>
#include <utility>

#include "base/log.h"
#include "base/thread_name.h"
#include "sink/staged_file.h"

namespace turnstiled::sink {

SpareFiles::SpareFiles(std::string dir, int mode, size_t target, std::string thread_name)
    : dir_(std::move(dir)), mode_(mode), target_(target), thread_name_(std::move(thread_name)) {}

SpareFiles::~SpareFiles() { Stop(); }

std::optional<SpareFiles::Spare> SpareFiles::Take() {
  std::lock_guard<std::mutex> lock(mu_);
  if (ready_.empty()) return std::nullopt;
  // The oldest first: each is taken in the order it was made.
  Spare s = std::move(ready_.front());
  ready_.pop_front();
  cv_.notify_all();
  return s;
}

void SpareFiles::Pause() {
  std::lock_guard<std::mutex> lock(mu_);
  ++paused_;
}

void SpareFiles::Resume() {
  std::lock_guard<std::mutex> lock(mu_);
  if (--paused_ == 0) cv_.notify_all();
}

void SpareFiles::Start() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = false;
  }
  thread_ = std::thread([this] { Run(); });
}

void SpareFiles::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  for (const Spare& s : ready_) ::unlink(s.path.c_str());
  ready_.clear();
}

size_t SpareFiles::ready() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ready_.size();
}

size_t SpareFiles::made() const {
  std::lock_guard<std::mutex> lock(mu_);
  return made_;
}

void SpareFiles::Run() {
  base::NameThisThread(thread_name_);
  bool warned = false;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || (paused_ == 0 && ready_.size() < target_); });
    if (stop_) return;
    lock.unlock();
    std::string path = SpareTempPath(dir_);
    auto fd = CreateTempFile(path, mode_);
    lock.lock();
    if (fd.ok()) {
      ::close(*fd);
      ready_.push_back({std::move(path)});
      ++made_;
      warned = false;
      continue;
    }
    // A full or failing disk: flushes create their files themselves and report it; this thread
    // says so once and tries again in a while.
    if (!warned) {
      base::Log(base::LogLevel::kDebug, "sink", "no spare file made; flushes create their own",
                {{"dir", dir_}, {"error", fd.status().ToString()}});
      warned = true;
    }
    cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stop_; });
  }
}

}  // namespace turnstiled::sink
