// HttpServer: the operational endpoints on metrics.listen (SPEC §7).
//   /metrics  Prometheus text format of the registry
//   /healthz  200 while the pipeline makes progress (its threads loop), 503 with the reason
//             otherwise
//   /readyz   200 when the readiness probe says so (partitions assigned, sinks connected),
//             503 with the reason otherwise
//   anything else  the `extra` hook (the live view: /live, /events), if it takes the request
// With no registry, only the hook is served (live.listen on its own port).
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
  // Answers a GET or HEAD the server does not know; returns false to leave it (404).
  using RequestHook = std::function<bool(mg_connection*, const std::string& uri, bool head)>;

  // `listen` is "host:port"; port 0 picks a free one (see port()). `live` may be empty.
  // Also registers the process_* series in `registry`, which may be null (hook only).
  static base::Result<std::unique_ptr<HttpServer>> Start(
      const std::string& listen, std::shared_ptr<prometheus::Registry> registry,
      ReadinessProbe ready, ReadinessProbe live = {}, RequestHook extra = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }

 private:
  HttpServer(std::shared_ptr<prometheus::Registry> registry, ReadinessProbe ready,
             ReadinessProbe live, RequestHook extra)
      : registry_(std::move(registry)),
        ready_(std::move(ready)),
        live_(std::move(live)),
        extra_(std::move(extra)),
        process_(registry_ ? std::make_unique<ProcessMetrics>(*registry_) : nullptr) {}
  static int Handle(::mg_connection* conn, void* self);

  std::shared_ptr<prometheus::Registry> registry_;
  ReadinessProbe ready_;
  ReadinessProbe live_;
  RequestHook extra_;
  std::unique_ptr<ProcessMetrics> process_;
  mg_context* ctx_ = nullptr;
  int port_ = 0;
};

}  // namespace turnstiled::metrics
