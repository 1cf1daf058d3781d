// The live view's two endpoints (docs/LIVE.md), for metrics::HttpServer to route to:
//   GET /live     the page (its script is served as /live.js, so that the page's content
//                 security policy can forbid every inline script)
//   GET /events   Server-Sent Events from the Hub
#pragma once

#include <string>

#include "live/hub.h"

struct mg_connection;

namespace turnstiled::live {

// Answers `uri` if it is one of the live view's; false otherwise (the caller answers).
// `head`: a HEAD request. Runs on the HTTP server's worker thread; /events holds that thread
// for as long as the client stays.
bool HandleRequest(Hub& hub, mg_connection* conn, const std::string& uri, bool head);

}  // namespace turnstiled::live
