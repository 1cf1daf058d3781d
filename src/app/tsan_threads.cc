// C11 threads for ThreadSanitizer builds.
//
// Debian's librdkafka uses glibc's C11 threads (thrd_create, mtx_lock, cnd_wait, ...), which
// GCC 12's ThreadSanitizer does not intercept: the first allocation on such a thread crashes,
// and the locks that order librdkafka's hand-over of message buffers to our consumer threads
// are invisible, so every fetched message looks like a race. In a TSan build this file defines
// those functions on top of pthreads, which TSan does intercept; the executable's definitions
// win over glibc's. glibc lays mtx_t and cnd_t out as pthread_mutex_t and pthread_cond_t and
// implements them the same way. Other builds compile nothing.
#if defined(__SANITIZE_THREAD__)

#include <pthread.h>
#include <threads.h>

#include <cerrno>
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

int mtx_init(mtx_t* mutex, int type) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  if ((type & mtx_recursive) != 0) pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
  const int rc = pthread_mutex_init(reinterpret_cast<pthread_mutex_t*>(mutex), &attr);
  pthread_mutexattr_destroy(&attr);
  return rc == 0 ? thrd_success : thrd_error;
}

int mtx_lock(mtx_t* mutex) {
  return pthread_mutex_lock(reinterpret_cast<pthread_mutex_t*>(mutex)) == 0 ? thrd_success
                                                                            : thrd_error;
}

int mtx_trylock(mtx_t* mutex) {
  const int rc = pthread_mutex_trylock(reinterpret_cast<pthread_mutex_t*>(mutex));
  return rc == 0 ? thrd_success : rc == EBUSY ? thrd_busy : thrd_error;
}

int mtx_timedlock(mtx_t* __restrict mutex, const struct timespec* __restrict deadline) {
  const int rc = pthread_mutex_timedlock(reinterpret_cast<pthread_mutex_t*>(mutex), deadline);
  return rc == 0 ? thrd_success : rc == ETIMEDOUT ? thrd_timedout : thrd_error;
}

int mtx_unlock(mtx_t* mutex) {
  return pthread_mutex_unlock(reinterpret_cast<pthread_mutex_t*>(mutex)) == 0 ? thrd_success
                                                                              : thrd_error;
}

void mtx_destroy(mtx_t* mutex) { pthread_mutex_destroy(reinterpret_cast<pthread_mutex_t*>(mutex)); }

int cnd_init(cnd_t* cond) {
  return pthread_cond_init(reinterpret_cast<pthread_cond_t*>(cond), nullptr) == 0 ? thrd_success
                                                                                  : thrd_error;
}

int cnd_signal(cnd_t* cond) {
  return pthread_cond_signal(reinterpret_cast<pthread_cond_t*>(cond)) == 0 ? thrd_success
                                                                           : thrd_error;
}

int cnd_broadcast(cnd_t* cond) {
  return pthread_cond_broadcast(reinterpret_cast<pthread_cond_t*>(cond)) == 0 ? thrd_success
                                                                              : thrd_error;
}

int cnd_wait(cnd_t* cond, mtx_t* mutex) {
  return pthread_cond_wait(reinterpret_cast<pthread_cond_t*>(cond),
                           reinterpret_cast<pthread_mutex_t*>(mutex)) == 0
             ? thrd_success
             : thrd_error;
}

int cnd_timedwait(cnd_t* __restrict cond, mtx_t* __restrict mutex,
                  const struct timespec* __restrict deadline) {
  const int rc = pthread_cond_timedwait(reinterpret_cast<pthread_cond_t*>(cond),
                                        reinterpret_cast<pthread_mutex_t*>(mutex), deadline);
  return rc == 0 ? thrd_success : rc == ETIMEDOUT ? thrd_timedout : thrd_error;
}

void cnd_destroy(cnd_t* cond) { pthread_cond_destroy(reinterpret_cast<pthread_cond_t*>(cond)); }

}  // extern "C"

#endif  // __SANITIZE_THREAD__
