// Replaces the global operator new and delete to count every heap allocation, for the tests
// that hold a path to "no allocation per record". Include it in exactly one file of a test
// binary, and keep that binary to those tests: the replacement applies to the whole program.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>

namespace turnstiled::testing {
// Heap allocations so far, by any thread.
inline long g_allocations = 0;

inline void* CountedAllocate(std::size_t n) {
  ++g_allocations;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
}  // namespace turnstiled::testing

void* operator new(std::size_t n) { return turnstiled::testing::CountedAllocate(n); }
void* operator new[](std::size_t n) { return turnstiled::testing::CountedAllocate(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  ++turnstiled::testing::g_allocations;
  return std::malloc(n == 0 ? 1 : n);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  ++turnstiled::testing::g_allocations;
  return std::malloc(n == 0 ? 1 : n);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
