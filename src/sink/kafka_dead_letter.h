// KafkaDeadLetter: dropped records on a Kafka topic (SPEC §5). See kafka_dead_letter.cc.
#pragma once

#include <memory>

#include "base/status.h"
#include "config/config.h"
#include "sink/dead_letter.h"

namespace turnstiled::sink {

base::Result<std::unique_ptr<DeadLetter>> MakeKafkaDeadLetter(
    const config::DeadLetterConfig& config);

}  // namespace turnstiled::sink
