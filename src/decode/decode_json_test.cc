// json: one object per message, keys named by format.fields.

#include <doctest/doctest.h>

#include <string>

#include "decode/decode_test_util.h"
#include "decode/decoder.h"

using namespace turnstiled;
using namespace turnstiled::decode;
using namespace turnstiled::decode::testing;
using config::FormatType;

namespace {

// What `turnstiled produce --generate --format json` sends.
constexpr char kMessage[] =
    R"({"station":"2 ST","device":"N001,R002,00-00-00","time":"2024-01-06T05:00:00Z",)"
    R"("entries":12,"exits":3})";

std::unique_ptr<Decoder> Json(const std::string& zone = "UTC", int64_t max_bytes = 64 * 1024,
                              config::JsonFields fields = {}) {
  return Make(FormatType::kJson, zone, max_bytes, std::move(fields));
}

// A message with the default keys, `time` and `entries` given as JSON text.
std::string With(const std::string& time, const std::string& entries = "12",
                 const std::string& extra = "") {
  return R"({"station":"S","device":"D",)" + extra + R"("time":)" + time + R"(,"entries":)" +
         entries + R"(,"exits":3})";
}

}  // namespace

TEST_CASE("a json object maps station, device, time, entries and exits by key") {
  auto d = Json();
  const Decoded r = Decode(d.get(), kMessage);
  REQUIRE(r.status == DecodeStatus::kOk);
  CHECK(r.station == "2 ST");
  CHECK(r.device == "N001,R002,00-00-00");
  CHECK(r.event_ms == Utc(2024, 1, 6, 5));
  CHECK(r.entries == 12);
  CHECK(r.exits == 3);
}

TEST_CASE("format.fields renames the keys, in any order, and other keys are ignored") {
  config::JsonFields f;
  f.station = "STATION";
  f.device = "turnstile";
  f.time = "ts";
  f.entries = "in";
  f.exits = "out";
  auto d = Json("UTC", 64 * 1024, f);
  const Decoded r = Decode(d.get(), R"({"out":7,"in":5,"ts":1704517200,"extra":"x",)"
                                    R"("station":"ignored","turnstile":"A/B","STATION":"59 ST"})");
  REQUIRE(r.status == DecodeStatus::kOk);
  CHECK(r.station == "59 ST");
  CHECK(r.device == "A/B");
  CHECK(r.entries == 5);
  CHECK(r.exits == 7);
  CHECK(r.event_ms == Utc(2024, 1, 6, 5));
  // The default names are now just unknown keys.
  CHECK(Status(d.get(), kMessage) == DecodeStatus::kMissingField);
}

TEST_CASE("unknown keys are skipped whatever they hold, nested or not") {
  auto d = Json();
  const Decoded r = Decode(d.get(), With(R"("2024-01-06T05:00:00Z")", "12",
                                         R"("meta":{"a":[1,2,{"b":null}],"station":"no"},)"
                                         R"("list":[[],{}],"n":null,"t":true,"f":-1.5e3,)"));
  REQUIRE(r.status == DecodeStatus::kOk);
  CHECK(r.station == "S");
  CHECK(r.device == "D");
}

TEST_CASE("strings are unescaped, in values and keys") {
  auto d = Json();
  const Decoded r = Decode(
      d.get(),
      R"({"st\u0061tion":"B\u0027WAY-LAFAYETTE \"X\"","device":"A\/B","time":"2024-01-06T05:00:00Z","entries":1,"exits":2})");
  REQUIRE(r.status == DecodeStatus::kOk);
  CHECK(r.station == "B'WAY-LAFAYETTE \"X\"");
  CHECK(r.device == "A/B");
  const Decoded u =
      Decode(d.get(), R"({"station":"Café","device":"D","time":0,"entries":1,"exits":2})");
  REQUIRE(u.status == DecodeStatus::kOk);
  CHECK(u.station == "Café");
}

TEST_CASE("a key given twice: the last one counts") {
  auto d = Json();
  const Decoded r = Decode(d.get(), With(R"("2024-01-06T05:00:00Z")", "12", R"("station":"T",)"));
  REQUIRE(r.status == DecodeStatus::kOk);
  CHECK(r.station == "T");
}

TEST_CASE("the device may be an integer, rendered in decimal") {
  auto d = Json();
  const Decoded r =
      Decode(d.get(), R"({"station":"S","device":-42,"time":0,"entries":1,"exits":2})");
  REQUIRE(r.status == DecodeStatus::kOk);
  CHECK(r.device == "-42");
  const Decoded big = Decode(
      d.get(), R"({"station":"S","device":18446744073709551615,"time":0,"entries":1,"exits":2})");
  REQUIRE(big.status == DecodeStatus::kOk);
  CHECK(big.device == "18446744073709551615");
  for (const char* bad : {"1.5", "true", "null", "[1]", R"({"a":1})"}) {
    CAPTURE(std::string(bad));
    CHECK(Status(d.get(), std::string(R"({"station":"S","device":)") + bad +
                              R"(,"time":0,"entries":1,"exits":2})") == DecodeStatus::kWrongType);
  }
}

TEST_CASE("time: RFC 3339 with Z or an offset, or no zone read in format.timezone") {
  auto d = Json("America/New_York");
  const struct {
    const char* time;
    int64_t want;
  } cases[] = {
      {R"("2024-01-06T05:00:00Z")", Utc(2024, 1, 6, 5)},
      {R"("2024-01-06t05:00:00z")", Utc(2024, 1, 6, 5)},
      {R"("2024-01-06T05:00:00.5Z")", Utc(2024, 1, 6, 5, 0, 0, 500)},
      {R"("2024-01-06T05:00:00+01:00")", Utc(2024, 1, 6, 4)},
      {R"("2024-01-06T05:00:00-05:00")", Utc(2024, 1, 6, 10)},
      {R"("2024-01-06T00:00:00")", Utc(2024, 1, 6, 5)},       // New York, EST
      {R"("2024-06-06 00:00:00")", Utc(2024, 6, 6, 4)},       // New York, EDT
      {R"("2024-03-10T02:30:00")", Utc(2024, 3, 10, 7, 30)},  // gap: the EST offset
      {R"("2024-11-03T01:30:00")", Utc(2024, 11, 3, 5, 30)},  // overlap: the first, EDT
  };
  for (const auto& c : cases) {
    CAPTURE(std::string(c.time));
    const Decoded r = Decode(d.get(), With(c.time));
    REQUIRE(r.status == DecodeStatus::kOk);
    CHECK(r.event_ms == c.want);
  }
}

TEST_CASE("time: epoch seconds below 1e11, epoch milliseconds from 1e11 on") {
  auto d = Json("America/New_York");  // epochs are UTC whatever the zone
  const struct {
    const char* time;
    int64_t want;
  } cases[] = {
      {"1704517200", Utc(2024, 1, 6, 5)},
      {"1704517200000", Utc(2024, 1, 6, 5)},
      {"1704517200.25", Utc(2024, 1, 6, 5, 0, 0, 250)},
      {"1704517200123.0", Utc(2024, 1, 6, 5, 0, 0, 123)},
      {"1.7045172e9", Utc(2024, 1, 6, 5)},
      {"0", 0},
      {"-86400", -86400000},
      {"99999999999", 99999999999000},  // the largest number read as seconds
      {"100000000000", 100000000000},   // the smallest read as milliseconds (1973-03-03)
  };
  for (const auto& c : cases) {
    CAPTURE(std::string(c.time));
    const Decoded r = Decode(d.get(), With(c.time));
    REQUIRE(r.status == DecodeStatus::kOk);
    CHECK(r.event_ms == c.want);
  }
}

TEST_CASE("time: a string that is no date-time is bad_time, another type wrong_type") {
  auto d = Json();
  for (const char* bad : {R"("")", R"("yesterday")", R"("2024-01-06")", R"("2024-01-06T25:00:00Z")",
                          R"("2024-02-30T05:00:00Z")", R"("2024-01-06T05:00:00Q")",
                          R"("2024-01-06T05:00:00+5")", R"("1704517200")",
                          "18446744073709551615",  // above INT64_MAX
                          "1e300", "-1e300"}) {
    CAPTURE(std::string(bad));
    CHECK(Status(d.get(), With(bad)) == DecodeStatus::kBadTime);
  }
  for (const char* bad : {"true", "null", "[]", R"({"s":1})"}) {
    CAPTURE(std::string(bad));
    CHECK(Status(d.get(), With(bad)) == DecodeStatus::kWrongType);
  }
}

TEST_CASE("time: an epoch beyond the years 0000..9999 is bad_time, like a date-time string") {
  auto d = Json();
  CHECK(Status(d.get(), With("253402300799999")) == DecodeStatus::kOk);  // 9999-12-31T23:59:59.999Z
  CHECK(Status(d.get(), With("253402300800000")) == DecodeStatus::kBadTime);
  CHECK(Status(d.get(), With("9223372036854775807")) == DecodeStatus::kBadTime);
  CHECK(Status(d.get(), With("-9223372036854775808")) == DecodeStatus::kBadTime);
  CHECK(Status(d.get(), With("-62167219200000")) == DecodeStatus::kOk);  // 0000-01-01T00:00:00Z
  CHECK(Status(d.get(), With("-62167219200001")) == DecodeStatus::kBadTime);
  CHECK(Status(d.get(), With("4e15")) == DecodeStatus::kBadTime);
  CHECK(Decode(d.get(), With(R"("0000-01-01T00:00:00Z")")).event_ms == -62167219200000);
  CHECK(Decode(d.get(), With(R"("9999-12-31T23:59:59.999Z")")).event_ms == 253402300799999);
}

TEST_CASE("counters: integers, or floats with no fraction such as 12.0") {
  auto d = Json();
  const struct {
    const char* text;
    int64_t value;
  } good[] = {{"0", 0},
              {"12.0", 12},
              {"1.2e3", 1200},
              {"-0.0", 0},
              {"-5", -5},
              {"2147178400", 2147178400},
              {"9223372036854775807", INT64_MAX},
              {"-9223372036854775808", INT64_MIN},
              {"9007199254740992.0", 9007199254740992}};
  for (const auto& g : good) {
    CAPTURE(std::string(g.text));
    const Decoded r = Decode(d.get(), With("0", g.text));
    REQUIRE(r.status == DecodeStatus::kOk);
    CHECK(r.entries == g.value);
  }
  for (const char* bad : {"12.5", "1e300", "9223372036854775808", "18446744073709551616",
                          "100000000000000000000000000000", "9007199254740994.0", "-1e19"}) {
    CAPTURE(std::string(bad));
    CHECK(Status(d.get(), With("0", bad)) == DecodeStatus::kBadNumber);
  }
  for (const char* bad : {R"("12")", "true", "null", "[12]", R"({"v":12})"}) {
    CAPTURE(std::string(bad));
    CHECK(Status(d.get(), With("0", bad)) == DecodeStatus::kWrongType);
  }
}

TEST_CASE("station: a non-empty string") {
  auto d = Json();
  CHECK(Status(d.get(), R"({"station":"","device":"D","time":0,"entries":1,"exits":2})") ==
        DecodeStatus::kMissingField);
  CHECK(Status(d.get(), R"({"device":"D","time":0,"entries":1,"exits":2})") ==
        DecodeStatus::kMissingField);
  CHECK(Status(d.get(), R"({"station":"S","device":"","time":0,"entries":1,"exits":2})") ==
        DecodeStatus::kMissingField);
  for (const char* bad : {"5", "null", "true", "[\"S\"]", R"({"name":"S"})"}) {
    CAPTURE(std::string(bad));
    CHECK(Status(d.get(), std::string(R"({"station":)") + bad +
                              R"(,"device":"D","time":0,"entries":1,"exits":2})") ==
          DecodeStatus::kWrongType);
  }
}

TEST_CASE("every missing key is missing_field") {
  auto d = Json();
  const char* keys[] = {"station", "device", "time", "entries", "exits"};
  for (const char* skip : keys) {
    std::string msg = "{";
    for (const char* k : keys) {
      if (std::string(k) == skip) continue;
      if (msg.size() > 1) msg += ",";
      msg += std::string("\"") + k + "\":" + (std::string(k) == "station" ? "\"S\"" : "1");
    }
    msg += "}";
    CAPTURE(msg);
    CHECK(Status(d.get(), msg) == DecodeStatus::kMissingField);
  }
  CHECK(Status(d.get(), "{}") == DecodeStatus::kMissingField);
}

TEST_CASE("not an object, malformed, or followed by anything but blanks: bad_field_count") {
  auto d = Json();
  const std::string ok = kMessage;
  for (const std::string& bad : {std::string("[]"),
                                 std::string("[") + ok + "]",
                                 std::string("5"),
                                 std::string("\"s\""),
                                 std::string("null"),
                                 std::string("true"),
                                 ok + " x",
                                 ok + "}",
                                 ok + ok,
                                 ok + "\n" + ok,
                                 ok + ",",
                                 ok + " 5",
                                 ok.substr(0, ok.size() - 1),
                                 std::string("{"),
                                 std::string(R"({"station":"S",})"),
                                 std::string(R"({"station" "S"})"),
                                 std::string(R"({station:"S"})"),
                                 std::string(R"({"station":'S'})"),
                                 std::string("{\"station\":\"S\ttab\"}"),
                                 std::string("timestamp,station\n") + ok}) {
    CAPTURE(bad);
    CHECK(Status(d.get(), bad) == DecodeStatus::kBadFieldCount);
  }
  for (const std::string& good : {ok + " ", ok + "\n", ok + "\r\n", "\n  " + ok + "\t\n"}) {
    CAPTURE(good);
    CHECK(Status(d.get(), good) == DecodeStatus::kOk);
  }
}

TEST_CASE("bytes that are not UTF-8 are not_utf8, wherever they are") {
  auto d = Json();
  for (const std::string& bad :
       {With("0", "1", "\"x\":\"\xff\","), With("0", "1", "\"\xc3\x28\":1,"),
        std::string("{\"station\":\"S\xe2\x82\",\"device\":\"D\",\"time\":0,\"entries\":1,"
                    "\"exits\":2}"),
        std::string("{\"station\":\"\xc0\xaf\"}"),      // an overlong '/'
        std::string("{\"station\":\"\xed\xa0\x80\"}"),  // a UTF-16 surrogate
        std::string(kMessage) + "\xff", std::string("\xfe\xff")}) {
    CHECK(Status(d.get(), bad) == DecodeStatus::kNotUtf8);
  }
}

TEST_CASE("empty and oversized messages") {
  auto d = Json("UTC", /*max_bytes=*/sizeof kMessage - 1);
  CHECK(Status(d.get(), "") == DecodeStatus::kEmpty);
  CHECK(Status(d.get(), " \r\n\t") == DecodeStatus::kEmpty);
  CHECK(Status(d.get(), kMessage) == DecodeStatus::kOk);  // exactly the limit
  CHECK(Status(d.get(), std::string(kMessage) + " ") == DecodeStatus::kOversized);
  CHECK(Status(d.get(), std::string(1 << 20, '\xff')) == DecodeStatus::kOversized);
}

TEST_CASE("a long message then a short one: the padded copy is reused without stale bytes") {
  auto d = Json();
  const std::string long_msg = With("0", "1", "\"pad\":\"" + std::string(10000, 'x') + "\",");
  CHECK(Status(d.get(), long_msg) == DecodeStatus::kOk);
  // A truncated short message must not see the long one's bytes behind it.
  const std::string shortened = long_msg.substr(0, 20);
  CHECK(Status(d.get(), shortened) == DecodeStatus::kBadFieldCount);
  const Decoded r = Decode(d.get(), kMessage);
  REQUIRE(r.status == DecodeStatus::kOk);
  CHECK(r.station == "2 ST");
}
