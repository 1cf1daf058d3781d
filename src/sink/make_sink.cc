// The one table of sink and dead-letter types: a closed switch, so a new type is a compile
// error here until it is handled.
#include "sink/dead_letter.h"
#include "sink/file_dead_letter.h"
#include "sink/file_sink.h"
#include "sink/kafka_dead_letter.h"
#include "sink/kafka_sink.h"
#include "sink/postgres_sink.h"
#include "sink/sink.h"
#include "sink/stdout_sink.h"

namespace turnstiled::sink {
namespace {

class DiscardDeadLetter final : public DeadLetter {
 public:
  void Write(const DeadLetterEntry&) override {}
  base::Status Flush() override { return {}; }
};

}  // namespace

base::Result<std::unique_ptr<Sink>> MakeSink(const config::SinkConfig& config) {
  switch (config.type) {
    case config::SinkType::kFile:
      return std::unique_ptr<Sink>(std::make_unique<FileSink>(config));
    case config::SinkType::kStdout:
      return std::unique_ptr<Sink>(std::make_unique<StdoutSink>());
    case config::SinkType::kPostgres:
      return MakePostgresSink(config);
    case config::SinkType::kKafka:
      return MakeKafkaSink(config);
  }
  return base::Status::Internal("unknown sink type");
}

base::Result<std::unique_ptr<DeadLetter>> MakeDeadLetter(const config::DeadLetterConfig& config) {
  if (!config.enabled) return std::unique_ptr<DeadLetter>(std::make_unique<DiscardDeadLetter>());
  switch (config.type) {
    case config::SinkType::kFile: {
      auto file = FileDeadLetter::Open(config);
      if (!file.ok()) return file.status();
      return std::unique_ptr<DeadLetter>(std::move(file).value());
    }
    case config::SinkType::kKafka:
      return MakeKafkaDeadLetter(config);
    case config::SinkType::kPostgres:
    case config::SinkType::kStdout:
      return base::Status::InvalidArgument(std::string("dead_letter type '") +
                                           config::Name(config.type) +
                                           "' is not supported; use file or kafka");
  }
  return base::Status::Internal("unknown dead_letter type");
}

}  // namespace turnstiled::sink
