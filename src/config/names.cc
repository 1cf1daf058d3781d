#include "config/config.h"

namespace turnstiled::config {

const char* Name(SourceType v) { return v == SourceType::kKafka ? "kafka" : "file"; }
const char* Name(FormatType v) {
  switch (v) {
    case FormatType::kMtaCsv:
      return "mta-csv";
    case FormatType::kSeedCsv:
      return "seed-csv";
    case FormatType::kJson:
      return "json";
  }
  return "?";
}
const char* Name(CounterMode v) { return v == CounterMode::kCumulative ? "cumulative" : "delta"; }
const char* Name(WindowType v) { return v == WindowType::kTumbling ? "tumbling" : "hopping"; }
const char* Name(EmitMode v) { return v == EmitMode::kFinal ? "final" : "update"; }
const char* Name(SinkType v) {
  switch (v) {
    case SinkType::kFile:
      return "file";
    case SinkType::kPostgres:
      return "postgres";
    case SinkType::kKafka:
      return "kafka";
    case SinkType::kStdout:
      return "stdout";
  }
  return "?";
}
const char* Name(FileFormat v) { return v == FileFormat::kCsv ? "csv" : "jsonl"; }
const char* Name(Compression v) { return v == Compression::kZstd ? "zstd" : "none"; }
const char* Name(StartOffset v) { return v == StartOffset::kEarliest ? "earliest" : "latest"; }

}  // namespace turnstiled::config
