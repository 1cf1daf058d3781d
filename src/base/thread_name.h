// Names the calling thread, so that `top -H`, `ps -L`, perf and gdb tell the daemon's threads
// apart (shard-0, source-1, sink-lake, ...). Linux keeps 15 bytes: a longer name is cut.
#pragma once

#include <string_view>

namespace turnstiled::base {

inline constexpr size_t kThreadNameMax = 15;

// Best effort: a failure leaves the inherited name.
void NameThisThread(std::string_view name);

}  // namespace turnstiled::base
