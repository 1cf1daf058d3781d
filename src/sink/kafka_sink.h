// KafkaSink: window rows as JSON messages on a results topic (SPEC §5). See kafka_sink.cc.
#pragma once

#include <memory>

#include "base/status.h"
#include "config/config.h"
#include "sink/sink.h"

namespace turnstiled::sink {

base::Result<std::unique_ptr<Sink>> MakeKafkaSink(const config::SinkConfig& config);

}  // namespace turnstiled::sink
