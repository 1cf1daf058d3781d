// IdTable: values keyed by a dense uint32 id (a shard's station ids), open addressing with
// linear probing on a power-of-two array.
//
// It holds one window's aggregates. Unlike a node or SwissTable map, Clear() keeps the array
// whatever its size, so a shard that hands a closed window's table to the next window
// allocates nothing once its tables have grown to the stream's shape. Erasing is rare
// (a partition handed over) and rebuilds the table.
//
// Thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace turnstiled::window {

template <class V>
class IdTable {
 public:
  static constexpr uint32_t kEmpty = UINT32_MAX;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  size_t capacity() const { return slots_.size(); }

  // The value of `id`, default-constructed and `inserted` if it was absent.
  // REQUIRES: id != kEmpty.
  std::pair<V*, bool> TryEmplace(uint32_t id) {
    // Up to 7/8 full: the table is most of a shard's memory (an entry per open window and
    // station), and probes stay short on the ids' spread (Fibonacci hashing of dense ids).
    if ((size_ + 1) * 8 > slots_.size() * 7) Grow();
    const size_t mask = slots_.size() - 1;
    for (size_t i = Home(id);; i = (i + 1) & mask) {
      Slot& s = slots_[i];
      if (s.id == id) return {&s.value, false};
      if (s.id == kEmpty) {
        s.id = id;
        s.value = V{};
        ++size_;
        return {&s.value, true};
      }
    }
  }

  // Asks the CPU to fetch where `id` would be looked up first, ahead of a TryEmplace.
  void Prefetch(uint32_t id) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[Home(id)], 1);
  }

  // Calls fn(id, value&) for every entry, in no particular order.
  template <class Fn>
  void ForEach(Fn&& fn) {
    for (Slot& s : slots_) {
      if (s.id != kEmpty) fn(s.id, s.value);
    }
  }
  template <class Fn>
  void ForEach(Fn&& fn) const {
    for (const Slot& s : slots_) {
      if (s.id != kEmpty) fn(s.id, s.value);
    }
  }

  // Removes every entry for which pred(id, value) holds; returns how many.
  template <class Pred>
  size_t EraseIf(Pred&& pred) {
    std::vector<Slot> keep;
    size_t erased = 0;
    for (Slot& s : slots_) {
      if (s.id == kEmpty) continue;
      if (pred(s.id, s.value)) {
        ++erased;
      } else {
        keep.push_back(s);
      }
    }
    if (erased == 0) return 0;
    Clear();
    for (const Slot& s : keep) *TryEmplace(s.id).first = s.value;
    return erased;
  }

  // Empties the table and keeps its array.
  void Clear() {
    if (size_ == 0) return;
    for (Slot& s : slots_) s.id = kEmpty;
    size_ = 0;
  }

 private:
  struct Slot {
    uint32_t id = kEmpty;
    V value{};
  };

  size_t Home(uint32_t id) const {
    // Fibonacci hashing: ids are dense, the multiply spreads neighbours apart.
    return static_cast<size_t>((static_cast<uint64_t>(id) * 0x9E3779B97F4A7C15ULL) >> 32) &
           (slots_.size() - 1);
  }

  void Grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.empty() ? 16 : old.size() * 2, Slot{});
    size_ = 0;
    for (const Slot& s : old) {
      if (s.id != kEmpty) *TryEmplace(s.id).first = s.value;
    }
  }

  std::vector<Slot> slots_;
  size_t size_ = 0;
};

}  // namespace turnstiled::window
