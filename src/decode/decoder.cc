#include "decode/decoder.h"

#include <cstring>

#include "base/time_zone.h"
#include "decode/json_decoder.h"
#include "decode/mta_csv.h"
#include "decode/seed_csv.h"

namespace turnstiled::decode {

int64_t Decoder::DecodeLines(std::string_view chunk, LineHandler* handler) {
  Record rec;
  int64_t n = 0;
  const char* p = chunk.data();
  const char* const end = p + chunk.size();
  while (p < end) {
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
    const char* line_end = nl != nullptr ? nl : end;
    ++n;
    if (line_end > p) {
      const std::string_view line(p, static_cast<size_t>(line_end - p));
      const DecodeStatus st = Decode(line, &rec);
      handler->OnLine(line, n, st, rec);
    }
    p = line_end + 1;
  }
  return n;
}

base::Result<std::unique_ptr<Decoder>> MakeDecoder(const config::FormatConfig& format) {
  auto zone = base::LocalTimeConverter::Create(format.timezone);
  if (!zone.ok()) return zone.status();
  switch (format.type) {
    case config::FormatType::kMtaCsv:
      return std::unique_ptr<Decoder>(
          new MtaCsvDecoder(std::move(zone).value(), format.max_message_bytes));
    case config::FormatType::kSeedCsv:
      return std::unique_ptr<Decoder>(
          new SeedCsvDecoder(std::move(zone).value(), format.max_message_bytes));
    case config::FormatType::kJson:
      return std::unique_ptr<Decoder>(
          new JsonDecoder(std::move(zone).value(), format.max_message_bytes, format.fields));
  }
  return base::Status::InvalidArgument("unknown format type");
}

}  // namespace turnstiled::decode
