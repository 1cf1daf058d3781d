#include "base/time_zone.h"

namespace turnstiled::base {

Result<LocalTimeConverter> LocalTimeConverter::Create(const std::string& zone) {
  absl::TimeZone tz;
  if (zone == "UTC" || zone == "Etc/UTC") return LocalTimeConverter(absl::UTCTimeZone());
  if (!absl::LoadTimeZone(zone, &tz)) {
    return Status::InvalidArgument("unknown time zone '" + zone + "'");
  }
  return LocalTimeConverter(tz);
}

namespace {
absl::CivilSecond ToCivil(int64_t local_seconds) {
  return absl::CivilSecond(1970, 1, 1, 0, 0, 0) + local_seconds;
}
}  // namespace

int64_t LocalTimeConverter::SlowPath(int64_t local_seconds) const {
  const absl::TimeZone::TimeInfo info = tz_.At(ToCivil(local_seconds));
  return absl::ToUnixSeconds(info.pre);
}

void LocalTimeConverter::Fill(int64_t day, Slot* s) const {
  const int64_t start = day * 86400;
  const int64_t u0 = SlowPath(start);
  const int64_t u1 = SlowPath(start + 86399);
  s->day = day;
  s->offset = start - u0;
  // No transition inside the day when both ends share an offset and no instant between
  // them changes it (transitions are at most twice a year, so checking the ends suffices
  // unless two transitions fall on one day, which the tz database never has).
  s->uniform = (start + 86399 - u1) == s->offset;
}

}  // namespace turnstiled::base
