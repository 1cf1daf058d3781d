// PostgresSink: window rows upserted into a PostgreSQL table (SPEC §5). See postgres_sink.cc.
#pragma once

#include <memory>

#include "base/status.h"
#include "config/config.h"
#include "sink/sink.h"

namespace turnstiled::sink {

base::Result<std::unique_ptr<Sink>> MakePostgresSink(const config::SinkConfig& config);

}  // namespace turnstiled::sink
