// HttpServer: the operational endpoints on metrics.listen (SPEC §7).
//   /metrics  Prometheus text format of the registry
//   /healthz  200 while the pipeline makes progress (its threads loop), 503 with the reason
//             otherwise
//   /readyz   200 when the readiness probe says so (partitions assigned, sinks connected),
//             503 with the reason otherwise
// GET and HEAD only (405 otherwise). Runs on civetweb's own worker threads (enough that a few
// hundred idle or slow clients cannot starve a probe; a request must arrive within 2 s); the
// probe must be thread-safe.
#pragma once

#include <prometheus/registry.h>

#include <functional>
#include <memory>
#include <string>

#include "base/status.h"
#include "metrics/process_metrics.h"

struct mg_context;
struct mg_connection;

namespace turnstiled::metrics {

class HttpServer {
 public:
  // Returns "" when ready (or live), else the reason it is not.
  using ReadinessProbe = std::function<std::string()>;

  // `listen` is "host:port"; port 0 picks a free one (see port()). `live` may be empty.
  // Also registers the process_* series in `registry`.
  static base::Result<std::unique_ptr<HttpServer>> Start(
      const std::string& listen, std::shared_ptr<prometheus::Registry> registry,
      ReadinessProbe ready, ReadinessProbe live = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }

 private:
  HttpServer(std::shared_ptr<prometheus::Registry> registry, ReadinessProbe ready,
             ReadinessProbe live)
      : registry_(std::move(registry)),
        ready_(std::move(ready)),
        live_(std::move(live)),
        process_(*registry_) {}
  static int Handle(::mg_connection* conn, void* self);

  std::shared_ptr<prometheus::Registry> registry_;
  ReadinessProbe ready_;
  ReadinessProbe live_;
  ProcessMetrics process_;
  mg_context* ctx_ = nullptr;
  int port_ = 0;
};

}  // namespace turnstiled::metrics
