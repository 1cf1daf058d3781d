#include "sink/kafka_sink.h"

namespace turnstiled::sink {

base::Result<std::unique_ptr<Sink>> MakeKafkaSink(const config::SinkConfig&) {
  return base::Status::InvalidArgument("sink type 'kafka' is not available in this build yet");
}

}  // namespace turnstiled::sink
