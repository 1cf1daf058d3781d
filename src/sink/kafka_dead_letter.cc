#include "sink/kafka_dead_letter.h"

namespace turnstiled::sink {

base::Result<std::unique_ptr<DeadLetter>> MakeKafkaDeadLetter(const config::DeadLetterConfig&) {
  return base::Status::InvalidArgument(
      "dead_letter type 'kafka' is not available in this build yet");
}

}  // namespace turnstiled::sink
