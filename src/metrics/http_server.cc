#include "metrics/http_server.h"

#include <civetweb.h>
#include <prometheus/text_serializer.h>

#include <cstring>
#include <sstream>

namespace turnstiled::metrics {

namespace {
const char* StatusText(int code) {
  switch (code) {
    case 200:
      return "OK";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    default:
      return "Service Unavailable";
  }
}

// `head`: a HEAD request gets the headers of the GET reply and no body.
void Reply(mg_connection* conn, int code, const char* type, const std::string& body,
           bool head = false) {
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
            "Connection: close\r\n\r\n",
            code, StatusText(code), type, body.size(), code == 405 ? "Allow: GET, HEAD\r\n" : "");
  if (!head) mg_write(conn, body.data(), body.size());
}

// The endpoint holds up under slow and idle clients: enough workers that a few hundred of them
// cannot starve a probe, a deadline for reading a request, no keep-alive, small requests only.
constexpr const char* kWorkers = "256";
constexpr const char* kRequestTimeoutMs = "2000";
}  // namespace

base::Result<std::unique_ptr<HttpServer>> HttpServer::Start(
    const std::string& listen, std::shared_ptr<prometheus::Registry> registry, ReadinessProbe ready,
    ReadinessProbe live, RequestHook extra) {
  std::unique_ptr<HttpServer> server(
      new HttpServer(std::move(registry), std::move(ready), std::move(live), std::move(extra)));
  const char* options[] = {"listening_ports", listen.c_str(), "num_threads", kWorkers,
                           "request_timeout_ms", kRequestTimeoutMs, "enable_keep_alive", "no",
                           // Closing must not discard what is still in the send buffer (an
                           // abortive close would cut the tail off a large scrape or a live
                           // stream's last events); the kernel finishes sending after close.
                           "linger_timeout_ms", "-1", "max_request_size", "8192",
                           "connection_queue", "64", "listen_backlog", "256", nullptr};
  // Every request goes through begin_request, which is in place before the server listens
  // (a handler registered after mg_start would leave a moment in which requests get 404).
  mg_callbacks callbacks{};
  callbacks.begin_request = [](mg_connection* conn) {
    return Handle(conn, mg_get_user_data(mg_get_context(conn)));
  };
  server->ctx_ = mg_start(&callbacks, server.get(), options);
  if (server->ctx_ == nullptr) {
    return base::Status::Unavailable("cannot listen on " + listen +
                                     " (address in use or not valid)");
  }
  mg_server_port ports[4];
  const int n = mg_get_server_ports(server->ctx_, 4, ports);
  if (n > 0) server->port_ = ports[0].port;
  return server;
}

HttpServer::~HttpServer() {
  if (ctx_ != nullptr) mg_stop(ctx_);
}

int HttpServer::Handle(mg_connection* conn, void* self_ptr) {
  auto* self = static_cast<HttpServer*>(self_ptr);
  const mg_request_info* info = mg_get_request_info(conn);
  const std::string uri = info->local_uri != nullptr ? info->local_uri : "";
  const char* method = info->request_method != nullptr ? info->request_method : "";
  const bool head = std::strcmp(method, "HEAD") == 0;
  if (!head && std::strcmp(method, "GET") != 0) {
    // Read-only endpoints: nothing here changes the daemon.
    Reply(conn, 405, "text/plain", "method not allowed: use GET or HEAD\n");
    return 1;
  }
  if (!self->registry_) {
    if (!self->extra_ || !self->extra_(conn, uri, head)) {
      Reply(conn, 404, "text/plain", "not found: try /live or /events\n", head);
    }
    return 1;
  }
  if (uri == "/metrics") {
    self->process_->Update();
    std::ostringstream out;
    prometheus::TextSerializer().Serialize(out, self->registry_->Collect());
    Reply(conn, 200, "text/plain; version=0.0.4; charset=utf-8", out.str(), head);
  } else if (uri == "/healthz") {
    const std::string reason = self->live_ ? self->live_() : std::string();
    if (reason.empty()) {
      Reply(conn, 200, "text/plain", "ok\n", head);
    } else {
      Reply(conn, 503, "text/plain", "unhealthy: " + reason + "\n", head);
    }
  } else if (uri == "/readyz") {
    const std::string reason = self->ready_ ? self->ready_() : std::string();
    if (reason.empty()) {
      Reply(conn, 200, "text/plain", "ready\n", head);
    } else {
      Reply(conn, 503, "text/plain", "not ready: " + reason + "\n", head);
    }
  } else if (!self->extra_ || !self->extra_(conn, uri, head)) {
    Reply(conn, 404, "text/plain",
          self->extra_ ? "not found: try /metrics, /healthz, /readyz, /live or /events\n"
                       : "not found: try /metrics, /healthz or /readyz\n",
          head);
  }
  return 1;
}

}  // namespace turnstiled::metrics
