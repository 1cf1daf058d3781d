// StringHash: a fast, fixed, seedless hash of short strings (station names, device ids), eight
// bytes at a time. The ingest side hashes each record's station and device once; the shard
// looks them up with that hash (Prehashed), so the per-record path hashes no string twice.
//
// Fixed: the same string hashes the same in every process and build (routing files to shards
// depends on it). Not for untrusted keys where collisions could be forced: a collision here
// costs only a longer probe.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace turnstiled::base {

namespace hash_internal {
__extension__ typedef unsigned __int128 U128;
inline uint64_t Mix(uint64_t a, uint64_t b) {
  const U128 r = static_cast<U128>(a) * b;
  return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
}
}  // namespace hash_internal

inline uint64_t StringHash(std::string_view s) {
  using hash_internal::Mix;
  auto load64 = [](const char* q) {
    uint64_t w;
    std::memcpy(&w, q, 8);
    return w;
  };
  auto load32 = [](const char* q) {
    uint32_t w;
    std::memcpy(&w, q, 4);
    return static_cast<uint64_t>(w);
  };
  const char* p = s.data();
  const size_t len = s.size();
  size_t n = len;
  uint64_t h = 0x9E3779B97F4A7C15ULL ^ len;
  while (n >= 8) {
    h = Mix(h ^ load64(p), 0xBF58476D1CE4E5B9ULL);
    p += 8;
    n -= 8;
  }
  // The last bytes with whole loads (a byte-wise copy would stall on store forwarding): the
  // last eight of the string, overlapping what was hashed, or two overlapping fours.
  if (n > 0) {
    uint64_t w;
    if (len >= 8) {
      w = load64(s.data() + len - 8);
    } else if (n >= 4) {
      w = (load32(p) << 32) | load32(p + n - 4);
    } else {
      w = (static_cast<uint64_t>(static_cast<unsigned char>(p[0])) << 16) |
          (static_cast<uint64_t>(static_cast<unsigned char>(p[n / 2])) << 8) |
          static_cast<uint64_t>(static_cast<unsigned char>(p[n - 1]));
    }
    h = Mix(h ^ w, 0x94D049BB133111EBULL);
  }
  return Mix(h, 0x9E3779B97F4A7C15ULL);
}

// a == b for the short strings of the per-record path (names, ids, dates), with whole 8- or
// 4-byte loads that overlap at the end, and no call: memcmp's call and dispatch cost more than
// the compare for strings of a few words.
inline bool ShortEqual(std::string_view a, std::string_view b) {
  const size_t n = a.size();
  if (n != b.size()) return false;
  const char* p = a.data();
  const char* q = b.data();
  auto differ64 = [](const char* x, const char* y) {
    uint64_t u, v;
    std::memcpy(&u, x, 8);
    std::memcpy(&v, y, 8);
    return u ^ v;
  };
  if (n >= 8) {
    for (size_t i = 0; i + 8 < n; i += 8) {
      if (differ64(p + i, q + i) != 0) return false;
    }
    return differ64(p + n - 8, q + n - 8) == 0;
  }
  if (n >= 4) {
    uint32_t u[2], v[2];
    std::memcpy(&u[0], p, 4);
    std::memcpy(&u[1], p + n - 4, 4);
    std::memcpy(&v[0], q, 4);
    std::memcpy(&v[1], q + n - 4, 4);
    return ((u[0] ^ v[0]) | (u[1] ^ v[1])) == 0;
  }
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != q[i]) return false;
  }
  return true;
}

// A string with its StringHash, for heterogeneous lookups in hash maps keyed by std::string.
struct Prehashed {
  std::string_view s;
  uint64_t hash;
};

// Hash and equality for absl::flat_hash_map<std::string, V, PrehashedHash, PrehashedEq>:
// look up with a Prehashed and the string is not hashed again.
struct PrehashedHash {
  using is_transparent = void;
  size_t operator()(const Prehashed& k) const { return k.hash; }
  size_t operator()(std::string_view s) const { return StringHash(s); }
  size_t operator()(const std::string& s) const { return StringHash(s); }
};
struct PrehashedEq {
  using is_transparent = void;
  static std::string_view View(const Prehashed& k) { return k.s; }
  static std::string_view View(std::string_view s) { return s; }
  template <class A, class B>
  bool operator()(const A& a, const B& b) const {
    return ShortEqual(View(a), View(b));
  }
};

}  // namespace turnstiled::base
