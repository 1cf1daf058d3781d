#include "sink/postgres_sink.h"

namespace turnstiled::sink {

base::Result<std::unique_ptr<Sink>> MakePostgresSink(const config::SinkConfig&) {
  return base::Status::InvalidArgument("sink type 'postgres' is not available in this build yet");
}

}  // namespace turnstiled::sink
