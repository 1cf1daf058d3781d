// HttpServer: the operational endpoints on metrics.listen (SPEC §7).
//   /metrics  Prometheus text format of the registry
//   /healthz  200 while the process is alive
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

struct mg_context;
struct mg_connection;

namespace turnstiled::metrics {

class HttpServer {
 public:
  // Returns "" when ready, else the reason it is not.
  using ReadinessProbe = std::function<std::string()>;

  // `listen` is "host:port"; port 0 picks a free one (see port()).
  static base::Result<std::unique_ptr<HttpServer>> Start(
      const std::string& listen, std::shared_ptr<prometheus::Registry> registry,
      ReadinessProbe ready);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }

 private:
  HttpServer(std::shared_ptr<prometheus::Registry> registry, ReadinessProbe ready)
      : registry_(std::move(registry)), ready_(std::move(ready)) {}
  static int Handle(::mg_connection* conn, void* self);

  std::shared_ptr<prometheus::Registry> registry_;
  ReadinessProbe ready_;
  mg_context* ctx_ = nullptr;
  int port_ = 0;
};

}  // namespace turnstiled::metrics
