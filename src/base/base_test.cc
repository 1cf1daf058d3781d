#include <doctest/doctest.h>
#include <pthread.h>

#include <cstdio>
#include <string>
#include <thread>

#include "base/civil_time.h"
#include "base/duration.h"
#include "base/hash.h"
#include "base/log.h"
#include "base/thread_name.h"
#include "base/time_zone.h"

using namespace turnstiled::base;

TEST_CASE("durations parse every unit the config allows and refuse the rest") {
  CHECK(ParseDuration("500ms") == 500);
  CHECK(ParseDuration("30s") == 30 * kSecond);
  CHECK(ParseDuration("5m") == 5 * kMinute);
  CHECK(ParseDuration("4h") == 4 * kHour);
  CHECK(ParseDuration("1d") == kDay);
  CHECK(ParseDuration("1h30m") == 90 * kMinute);
  CHECK(ParseDuration("0s") == 0);
  CHECK_FALSE(ParseDuration("4").has_value());
  CHECK_FALSE(ParseDuration("4 h").has_value());
  CHECK_FALSE(ParseDuration("-4h").has_value());
  CHECK_FALSE(ParseDuration("4x").has_value());
  CHECK_FALSE(ParseDuration("").has_value());
  CHECK(FormatDuration(4 * kHour) == "4h");
  CHECK(FormatDuration(90 * kSecond) == "1m30s");
}

TEST_CASE("civil days round-trip and ISO times are UTC with a Z") {
  CHECK(DaysFromCivil(1970, 1, 1) == 0);
  CHECK(DaysFromCivil(2024, 1, 6) == 19728);
  auto d = CivilFromDays(19728);
  CHECK(d.year == 2024);
  CHECK(d.month == 1);
  CHECK(d.day == 6);
  CHECK(FormatIsoUtc(19728LL * 86400000 + 4 * 3600000) == "2024-01-06T04:00:00Z");
  CHECK(FormatIsoUtc(1500) == "1970-01-01T00:00:01.500Z");
  CHECK(FormatIsoUtc(-1000) == "1969-12-31T23:59:59Z");
  CHECK(FormatDateUtc(19728LL * 86400000) == "2024-01-06");
  CHECK(IsValidDate(2024, 2, 29));
  CHECK_FALSE(IsValidDate(2023, 2, 29));
  CHECK(FloorDiv(-1, 4) == -1);
  CHECK(FloorMod(-1, 4) == 3);
}

TEST_CASE("ISO times agree with a printf of the civil date, whichever day was formatted last") {
  // AppendIsoUtc keeps the last day's date text per thread: times that jump between days, across
  // the epoch and a year's end, and to years it cannot cache (past 9999, before 0), must each
  // read as their own.
  auto expected = [](int64_t ms) {
    const int64_t secs = FloorDiv(ms, 1000);
    const int64_t sod = FloorMod(secs, 86400);
    const CivilDate d = CivilFromDays(FloorDiv(secs, 86400));
    char buf[64];
    int n = std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02lld:%02lld:%02lld",
                          static_cast<long long>(d.year), d.month, d.day,
                          static_cast<long long>(sod / 3600), static_cast<long long>(sod / 60 % 60),
                          static_cast<long long>(sod % 60));
    if (FloorMod(ms, 1000) != 0) {
      n += std::snprintf(buf + n, sizeof buf - n, ".%03lld",
                         static_cast<long long>(FloorMod(ms, 1000)));
    }
    return std::string(buf, static_cast<size_t>(n)) + "Z";
  };
  const int64_t day = 86400000;
  const int64_t nye = DaysFromCivil(2023, 12, 31) * day;
  const int64_t far = DaysFromCivil(10000, 1, 1) * day;
  const int64_t times[] = {nye,
                           nye + day - 1,
                           nye + day,
                           nye - 1,
                           nye + 7,
                           0,
                           -1,
                           -day,
                           1500,
                           far,
                           far - 1,
                           far + 5 * day,
                           nye,
                           -62198755200000 - 1,
                           nye + 3601234,
                           nye + day + 3601234,
                           nye + 2 * day,
                           nye + day};
  std::string out;
  for (const int64_t t : times) {
    CAPTURE(t);
    CHECK(FormatIsoUtc(t) == expected(t));
    out.clear();
    AppendIsoUtc(t, &out);
    CHECK(out == expected(t));
  }
}

TEST_CASE("New York local times convert to UTC across both DST changes of 2024") {
  auto conv = LocalTimeConverter::Create("America/New_York");
  REQUIRE(conv.ok());
  auto local = [](int y, unsigned m, unsigned d, int h, int mi) {
    return DaysFromCivil(y, m, d) * 86400 + h * 3600 + mi * 60;
  };
  // Winter: UTC-5.
  CHECK(conv->ToUtcSeconds(local(2024, 1, 6, 0, 0)) == local(2024, 1, 6, 5, 0));
  // The day of the spring change: 01:59 is EST, 03:00 is EDT, 02:30 does not exist and is
  // read with the offset before the change (EST), like java.time and zoneinfo fold=0.
  CHECK(conv->ToUtcSeconds(local(2024, 3, 10, 1, 59)) == local(2024, 3, 10, 6, 59));
  CHECK(conv->ToUtcSeconds(local(2024, 3, 10, 3, 0)) == local(2024, 3, 10, 7, 0));
  CHECK(conv->ToUtcSeconds(local(2024, 3, 10, 2, 30)) == local(2024, 3, 10, 7, 30));
  CHECK(conv->ToUtcSeconds(local(2024, 3, 11, 0, 0)) == local(2024, 3, 11, 4, 0));
  // Fall back: 01:30 happens twice; the first (EDT) is chosen.
  CHECK(conv->ToUtcSeconds(local(2024, 11, 3, 1, 30)) == local(2024, 11, 3, 5, 30));
  CHECK(conv->ToUtcSeconds(local(2024, 11, 3, 3, 0)) == local(2024, 11, 3, 8, 0));
  CHECK_FALSE(LocalTimeConverter::Create("Mars/Olympus").ok());
}

TEST_CASE("redaction hides passwords in DSNs, URIs and properties but keeps the rest") {
  CHECK(Redact("host=db user=app password=hunter2 dbname=x") ==
        "host=db user=app password=*** dbname=x");
  CHECK(Redact("postgres://app:hunter2@db:5432/x") == "postgres://app:***@db:5432/x");
  CHECK(Redact("sasl.password=s3cret") == "sasl.password=***");
  CHECK(Redact("host=db") == "host=db");
}

TEST_CASE("a thread's name is what ps and top show, cut to the 15 bytes Linux keeps") {
  auto name_of = [](std::string_view name) {
    std::string got;
    std::thread t([&] {
      NameThisThread(name);
      char buf[64] = {};
      pthread_getname_np(pthread_self(), buf, sizeof buf);
      got = buf;
    });
    t.join();
    return got;
  };
  CHECK(name_of("shard-0") == "shard-0");
  CHECK(name_of("sink-a-very-long-sink-name") == "sink-a-very-lon");
  CHECK(name_of("") == "");
}

TEST_CASE("ShortEqual agrees with == at every length and every position of a difference") {
  // Views into larger buffers, at odd offsets, so that no load may reach past either end.
  std::string x(80, 'a'), y(80, 'a');
  for (size_t n = 0; n <= 40; ++n) {
    for (size_t at = 0; at < 3; ++at) {
      const std::string_view a(x.data() + 1 + at, n);
      const std::string_view b(y.data() + 7, n);
      CHECK(ShortEqual(a, b));
      CHECK_FALSE(ShortEqual(a, std::string_view(y.data() + 7, n + 1)));
      for (size_t i = 0; i < n; ++i) {
        y[7 + i] = 'b';
        INFO("length " << n << ", differs at " << i);
        CHECK_FALSE(ShortEqual(a, b));
        CHECK_FALSE(ShortEqual(b, a));
        y[7 + i] = 'a';
      }
    }
  }
}
