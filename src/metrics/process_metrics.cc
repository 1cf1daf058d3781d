#include "metrics/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>

#include "base/input_file.h"

namespace turnstiled::metrics {
namespace {

// The system's boot time, seconds since the epoch: the wall clock minus the time since boot.
// (Not /proc/stat's btime: a hardened unit's ProcSubset=pid hides that file.)
double BootTime() {
  timespec real{};
  timespec boot{};
  if (::clock_gettime(CLOCK_REALTIME, &real) != 0 || ::clock_gettime(CLOCK_BOOTTIME, &boot) != 0)
    return 0;
  return static_cast<double>(real.tv_sec - boot.tv_sec) +
         static_cast<double>(real.tv_nsec - boot.tv_nsec) / 1e9;
}

}  // namespace

ProcessMetrics::ProcessMetrics(prometheus::Registry& r)
    : cpu_seconds_(&prometheus::BuildCounter()
                        .Name("process_cpu_seconds_total")
                        .Help("Total user and system CPU time spent in seconds.")
                        .Register(r)
                        .Add({})),
      resident_bytes_(&prometheus::BuildGauge()
                           .Name("process_resident_memory_bytes")
                           .Help("Resident memory size in bytes.")
                           .Register(r)
                           .Add({})),
      virtual_bytes_(&prometheus::BuildGauge()
                          .Name("process_virtual_memory_bytes")
                          .Help("Virtual memory size in bytes.")
                          .Register(r)
                          .Add({})),
      open_fds_(&prometheus::BuildGauge()
                     .Name("process_open_fds")
                     .Help("Number of open file descriptors.")
                     .Register(r)
                     .Add({})),
      max_fds_(&prometheus::BuildGauge()
                    .Name("process_max_fds")
                    .Help("Maximum number of open file descriptors.")
                    .Register(r)
                    .Add({})),
      start_time_(&prometheus::BuildGauge()
                       .Name("process_start_time_seconds")
                       .Help("Start time of the process since the Unix epoch in seconds.")
                       .Register(r)
                       .Add({})) {
  Update();
}

void ProcessMetrics::Update() {
  std::lock_guard<std::mutex> lock(mu_);
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  // /proc/self/stat: the command name may hold spaces; fields count from after its ')'.
  auto read = base::ReadWholeFile("/proc/self/stat");
  const std::string text = read.ok() ? std::move(read).value() : std::string();
  const size_t close = text.rfind(')');
  if (close != std::string::npos && ticks > 0) {
    std::istringstream fields(text.substr(close + 2));
    std::string f;
    double utime = 0, stime = 0, start = 0, vsize = 0, rss = 0;
    // Field 3 (state) is the first after ')'; utime is 14, stime 15, starttime 22, vsize 23,
    // rss 24.
    for (int n = 3; n <= 24 && fields >> f; ++n) {
      if (n == 14) utime = std::strtod(f.c_str(), nullptr);
      if (n == 15) stime = std::strtod(f.c_str(), nullptr);
      if (n == 22) start = std::strtod(f.c_str(), nullptr);
      if (n == 23) vsize = std::strtod(f.c_str(), nullptr);
      if (n == 24) rss = std::strtod(f.c_str(), nullptr);
    }
    const double cpu = (utime + stime) / ticks;
    if (cpu > cpu_reported_) {
      cpu_seconds_->Increment(cpu - cpu_reported_);
      cpu_reported_ = cpu;
    }
    virtual_bytes_->Set(vsize);
    resident_bytes_->Set(rss * page);
    static const double boot = BootTime();
    if (boot > 0) start_time_->Set(boot + start / ticks);
  }
  if (DIR* d = ::opendir("/proc/self/fd")) {
    int n = 0;
    while (const dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') ++n;
    }
    ::closedir(d);
    open_fds_->Set(n - 1);  // not the descriptor of the listing itself
  }
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0) max_fds_->Set(static_cast<double>(lim.rlim_cur));
}

}  // namespace turnstiled::metrics
