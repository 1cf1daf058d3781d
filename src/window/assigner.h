// WindowAssigner: which windows an event time belongs to (SPEC §4).
//
// Window starts are `offset + k*slide` from the Unix epoch, as in Spark's window(). A record at
// time t belongs to every window with start <= t < start + size: one for tumbling windows
// (slide == size), size/slide for hopping ones. Pure arithmetic; thread-safe.
#pragma once

#include <cstdint>

#include "base/civil_time.h"

namespace turnstiled::window {

class WindowAssigner {
 public:
  // REQUIRES: size > 0, 0 < slide <= size.
  WindowAssigner(int64_t size_ms, int64_t slide_ms, int64_t offset_ms)
      : size_(size_ms), slide_(slide_ms), offset_(offset_ms) {}

  int64_t size() const { return size_; }
  int64_t slide() const { return slide_; }

  // The start of the latest window containing t.
  int64_t LastStart(int64_t t) const {
    return offset_ + base::FloorDiv(t - offset_, slide_) * slide_;
  }
  // Calls fn(start) for every window containing t, latest first.
  template <typename Fn>
  void ForEach(int64_t t, Fn&& fn) const {
    ForEachFrom(LastStart(t), t, fn);
  }
  // ForEach, given last_start == LastStart(t).
  template <typename Fn>
  void ForEachFrom(int64_t last_start, int64_t t, Fn&& fn) const {
    for (int64_t s = last_start; s > t - size_; s -= slide_) fn(s);
  }
  // The end of the latest window containing t: once the watermark reaches it, every window
  // of t has closed.
  int64_t LatestEnd(int64_t t) const { return LastStart(t) + size_; }

 private:
  const int64_t size_;
  const int64_t slide_;
  const int64_t offset_;
};

}  // namespace turnstiled::window
