#include "base/thread_name.h"

#include <pthread.h>

#include <algorithm>

namespace turnstiled::base {

void NameThisThread(std::string_view name) {
  char buf[kThreadNameMax + 1] = {};
  name.copy(buf, std::min(name.size(), kThreadNameMax));
  ::pthread_setname_np(::pthread_self(), buf);
}

}  // namespace turnstiled::base
