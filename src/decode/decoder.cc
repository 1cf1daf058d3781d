#include "decode/decoder.h"

#include "base/time_zone.h"
#include "decode/json_decoder.h"
#include "decode/mta_csv.h"
#include "decode/seed_csv.h"

namespace turnstiled::decode {

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
