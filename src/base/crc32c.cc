#include "base/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace turnstiled::base {
namespace {

std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) != 0 ? 0x82F63B78U ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}

uint32_t TableCrc(uint32_t c, std::string_view bytes) {
  static const std::array<uint32_t, 256> table = MakeCrcTable();
  for (unsigned char ch : bytes) c = table[(c ^ ch) & 0xFF] ^ (c >> 8);
  return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t HardwareCrc(uint32_t c, std::string_view bytes) {
  const char* p = bytes.data();
  size_t n = bytes.size();
  uint64_t c64 = c;
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    c64 = _mm_crc32_u64(c64, w);
    p += 8;
    n -= 8;
  }
  c = static_cast<uint32_t>(c64);
  while (n > 0) {
    c = _mm_crc32_u8(c, static_cast<unsigned char>(*p++));
    --n;
  }
  return c;
}

bool HasSse42() { return __builtin_cpu_supports("sse4.2"); }
#endif

}  // namespace

uint32_t Crc32c(std::string_view bytes, uint32_t crc) {
  const uint32_t c = crc ^ 0xFFFFFFFFU;
#if defined(__x86_64__)
  static const bool hardware = HasSse42();
  if (hardware) return HardwareCrc(c, bytes) ^ 0xFFFFFFFFU;
#endif
  return TableCrc(c, bytes) ^ 0xFFFFFFFFU;
}

}  // namespace turnstiled::base
