// C11 threads for ThreadSanitizer builds.
//
// Debian's librdkafka starts its threads with glibc's thrd_create(), which GCC 12's
// ThreadSanitizer does not intercept: the first allocation on such a thread then crashes. In a
// TSan build this file defines thrd_create/thrd_join/thrd_detach on top of pthreads, which TSan
// does intercept, so the executable's definitions win over glibc's. Other builds compile nothing.
#if defined(__SANITIZE_THREAD__)

#include <pthread.h>
#include <threads.h>

#include <cstdint>
#include <cstdlib>

namespace {

struct ThreadStart {
  thrd_start_t func;
  void* arg;
};

void* RunThreadStart(void* p) {
  const ThreadStart start = *static_cast<ThreadStart*>(p);
  std::free(p);
  return reinterpret_cast<void*>(static_cast<intptr_t>(start.func(start.arg)));
}

}  // namespace

extern "C" {

int thrd_create(thrd_t* thread, thrd_start_t func, void* arg) {
  auto* start = static_cast<ThreadStart*>(std::malloc(sizeof(ThreadStart)));
  if (start == nullptr) return thrd_nomem;
  *start = ThreadStart{func, arg};
  if (pthread_create(thread, nullptr, RunThreadStart, start) != 0) {
    std::free(start);
    return thrd_error;
  }
  return thrd_success;
}

int thrd_join(thrd_t thread, int* result) {
  void* value = nullptr;
  if (pthread_join(thread, &value) != 0) return thrd_error;
  if (result != nullptr) *result = static_cast<int>(reinterpret_cast<intptr_t>(value));
  return thrd_success;
}

int thrd_detach(thrd_t thread) { return pthread_detach(thread) == 0 ? thrd_success : thrd_error; }

}  // extern "C"

#endif  // __SANITIZE_THREAD__
