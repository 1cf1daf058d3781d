// ProcessMetrics: the standard process_* series (CPU, memory, file descriptors, start time),
// read from /proc at each scrape, as Prometheus's own clients export them.
//
// Thread-safe: Update() may be called by concurrent scrapes.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <mutex>

namespace turnstiled::metrics {

class ProcessMetrics {
 public:
  explicit ProcessMetrics(prometheus::Registry& registry);
  // Reads /proc/self and sets every series. Best effort: a value that cannot be read keeps
  // its last one.
  void Update();

 private:
  std::mutex mu_;
  prometheus::Counter* cpu_seconds_;
  prometheus::Gauge* resident_bytes_;
  prometheus::Gauge* virtual_bytes_;
  prometheus::Gauge* open_fds_;
  prometheus::Gauge* max_fds_;
  prometheus::Gauge* start_time_;
  double cpu_reported_ = 0;  // guarded by mu_
};

}  // namespace turnstiled::metrics
