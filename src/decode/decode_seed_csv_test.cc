// seed-csv: the seed project's sample message, a header line and one row per message.

#include <doctest/doctest.h>

#include <string>

#include "decode/decode_test_util.h"
#include "decode/decoder.h"

using namespace turnstiled;
using namespace turnstiled::decode;
using namespace turnstiled::decode::testing;
using config::FormatType;

namespace {

constexpr char kHeader[] = "timestamp,station,turnstile_id,device_id,entry,exit,entry_datetime";
// What `turnstiled produce --generate --format seed-csv` sends (one message).
constexpr char kMessage[] =
    "timestamp,station,turnstile_id,device_id,entry,exit,entry_datetime\n"
    "'2024-01-06 00:00:00','2 ST','N001-R002','00-00-01',17,4,'2024-01-06 04:00:00'";

std::unique_ptr<Decoder> Seed(const std::string& zone = "UTC", int64_t max_bytes = 64 * 1024) {
  return Make(FormatType::kSeedCsv, zone, max_bytes);
}

// A row with every value quoted by `q`, and entry_datetime `when`.
std::string Row(char q, const std::string& station, const std::string& when = "2024-01-06 04:00:00",
                const std::string& entry = "17") {
  const std::string Q(1, q);
  return Q + "2024-01-06 00:00:00" + Q + "," + Q + station + Q + "," + Q + "N001-R002" + Q + "," +
         Q + "00-00-01" + Q + "," + entry + ",4," + Q + when + Q;
}

}  // namespace

TEST_CASE("the seed message gives device turnstile_id/device_id, station and the entry time") {
  auto d = Seed("America/New_York");
  const Decoded r = Decode(d.get(), kMessage);
  REQUIRE(r.status == DecodeStatus::kOk);
  CHECK(r.station == "2 ST");
  CHECK(r.device == "N001-R002/00-00-01");
  CHECK(r.entries == 17);
  CHECK(r.exits == 4);
  CHECK(r.event_ms == Utc(2024, 1, 6, 9, 0, 0));  // entry_datetime, 04:00 EST
}

TEST_CASE("the send `timestamp` column is not the event time and is not read") {
  auto d = Seed();
  const Decoded r =
      Decode(d.get(), "'whenever','2 ST','N001-R002','00-00-01',1,2,'2024-01-06 04:00:00'");
  REQUIRE(r.status == DecodeStatus::kOk);
  CHECK(r.event_ms == Utc(2024, 1, 6, 4));
}

TEST_CASE("values may be quoted with ' or \" or not at all") {
  auto d = Seed();
  for (const std::string& row :
       {Row('\'', "59 ST"), Row('"', "59 ST"),
        std::string("2024-01-06 00:00:00,59 ST,N001-R002,00-00-01,17,4,2024-01-06 04:00:00"),
        std::string(" '2024-01-06 00:00:00' , \"59 ST\" ,N001-R002 , '00-00-01','17' , \"4\","
                    "  2024-01-06 04:00:00  ")}) {
    CAPTURE(row);
    const Decoded r = Decode(d.get(), row);
    REQUIRE(r.status == DecodeStatus::kOk);
    CHECK(r.station == "59 ST");
    CHECK(r.device == "N001-R002/00-00-01");
    CHECK(r.entries == 17);
    CHECK(r.exits == 4);
    CHECK(r.event_ms == Utc(2024, 1, 6, 4));
  }
}

TEST_CASE("a quoted value may hold commas and the other quote character") {
  auto d = Seed();
  const Decoded r = Decode(d.get(), Row('"', "LEXINGTON AV, 53 ST"));
  REQUIRE(r.status == DecodeStatus::kOk);
  CHECK(r.station == "LEXINGTON AV, 53 ST");
  const Decoded r2 = Decode(d.get(), Row('"', "B'WAY-LAFAYETTE"));
  REQUIRE(r2.status == DecodeStatus::kOk);
  CHECK(r2.station == "B'WAY-LAFAYETTE");
}

TEST_CASE("real station names with an apostrophe survive single quotes, doubled or not") {
  auto d = Seed();
  for (const char* station : {"B'WAY-LAFAYETTE", "E 143/ST MARY'S"}) {
    CAPTURE(std::string(station));
    // A producer that writes '...' around values without escaping them.
    const Decoded r = Decode(d.get(), Row('\'', station));
    REQUIRE(r.status == DecodeStatus::kOk);
    CHECK(r.station == station);
    CHECK(r.device == "N001-R002/00-00-01");
    CHECK(r.event_ms == Utc(2024, 1, 6, 4));
    // A CSV writer that doubles the quote character inside a quoted value.
    std::string doubled = station;
    doubled.insert(doubled.find('\''), "'");
    const Decoded r2 = Decode(d.get(), Row('\'', doubled));
    REQUIRE(r2.status == DecodeStatus::kOk);
    CHECK(r2.station == station);
  }
  // Doubled quotes in the device fields are undone as well.
  const Decoded r3 = Decode(d.get(), "'t','S','N''1','0\"\"1',1,2,'2024-01-06 04:00:00'");
  REQUIRE(r3.status == DecodeStatus::kOk);
  CHECK(r3.device == "N'1/0\"\"1");  // only the quote that encloses the value is undone
}

TEST_CASE("a header line is skipped wherever it appears") {
  auto d = Seed();
  CHECK(Status(d.get(), kHeader) == DecodeStatus::kHeader);
  CHECK(Status(d.get(), std::string(kHeader) + "\r\n") == DecodeStatus::kHeader);
  CHECK(Status(d.get(), std::string(kHeader) + "\n" + kHeader) == DecodeStatus::kHeader);
  CHECK(Status(d.get(),
               "'timestamp','station','turnstile_id','device_id','entry','exit',"
               "'entry_datetime'") == DecodeStatus::kHeader);
  CHECK(Status(d.get(), "timestamp   ,station") == DecodeStatus::kHeader);
  const std::string row = Row('\'', "2 ST");
  for (const std::string& msg :
       {std::string(kHeader) + "\n" + row, std::string(kHeader) + "\r\n" + row + "\r\n",
        row + "\n" + kHeader, std::string("\n") + kHeader + "\n\n" + row + "\n" + kHeader + "\n"}) {
    CAPTURE(msg);
    const Decoded r = Decode(d.get(), msg);
    REQUIRE(r.status == DecodeStatus::kOk);
    CHECK(r.station == "2 ST");
    CHECK(r.exits == 4);
  }
}

TEST_CASE("a message holds one row: a second makes it bad_field_count") {
  auto d = Seed();
  const std::string row = Row('\'', "2 ST");
  CHECK(Status(d.get(), row + "\n" + row) == DecodeStatus::kBadFieldCount);
  CHECK(Status(d.get(), std::string(kHeader) + "\n" + row + "\n" + row) ==
        DecodeStatus::kBadFieldCount);
}

TEST_CASE("entry_datetime is ISO 8601 with T or a blank; a zone or offset overrides the config") {
  auto d = Seed("America/New_York");
  const struct {
    const char* when;
    int64_t want;
  } cases[] = {
      {"2024-01-06 04:00:00", Utc(2024, 1, 6, 9)},
      {"2024-01-06T04:00:00", Utc(2024, 1, 6, 9)},
      {"2024-07-06T04:00:00", Utc(2024, 7, 6, 8)},
      {"2024-01-06T04:00:00Z", Utc(2024, 1, 6, 4)},
      {"2024-01-06T04:00:00.250Z", Utc(2024, 1, 6, 4, 0, 0, 250)},
      {"2024-01-06T04:00:00.123456789", Utc(2024, 1, 6, 9, 0, 0, 123)},
      {"2024-01-06T04:00:00+01:00", Utc(2024, 1, 6, 3)},
      {"2024-01-06T04:00:00-0530", Utc(2024, 1, 6, 9, 30)},
      {"2024-01-06T04:00:00+02", Utc(2024, 1, 6, 2)},
      {"2024-03-10 02:30:00", Utc(2024, 3, 10, 7, 30)},  // DST gap: EST offset
      {"2024-11-03 01:30:00", Utc(2024, 11, 3, 5, 30)},  // DST overlap: first (EDT)
  };
  for (const auto& c : cases) {
    CAPTURE(std::string(c.when));
    const Decoded r = Decode(d.get(), Row('\'', "S", c.when));
    REQUIRE(r.status == DecodeStatus::kOk);
    CHECK(r.event_ms == c.want);
  }
  for (const char* bad :
       {"2024-01-06", "01/06/2024 04:00:00", "2024-01-06T04:00", "2024-13-06 04:00:00",
        "2024-02-30 04:00:00", "2024-01-06 24:00:00", "2024-01-06 04:00:00.",
        "2024-01-06 04:00:00 ", "2024-01-06 04:00:00+1", "2024-01-06 04:00:00+24:00",
        "2024-01-06 04:00:00Zx", "2024-01-06x04:00:00", "now"}) {
    CAPTURE(std::string(bad));
    CHECK(Status(d.get(), Row('"', "S", bad)) == DecodeStatus::kBadTime);
  }
}

TEST_CASE("every seed-csv reason") {
  auto d = Seed("UTC", /*max_bytes=*/200);
  CHECK(Status(d.get(), "") == DecodeStatus::kEmpty);
  CHECK(Status(d.get(), " \r\n\n") == DecodeStatus::kEmpty);
  CHECK(Status(d.get(), std::string(201, 'x')) == DecodeStatus::kOversized);
  CHECK(Status(d.get(), Row('\'', "S\xff")) == DecodeStatus::kNotUtf8);
  CHECK(Status(d.get(), std::string(kHeader) + "\xc3\n" + Row('\'', "S")) ==
        DecodeStatus::kNotUtf8);
  CHECK(Decode(d.get(), Row('\'', "CAF\xc3\x89")).station == "CAF\xc3\x89");
  CHECK(Status(d.get(), "a,b,c,d,e,f") == DecodeStatus::kBadFieldCount);
  CHECK(Status(d.get(), "a,b,c,d,e,f,g,h") == DecodeStatus::kBadFieldCount);
  CHECK(Status(d.get(), Row('\'', "S") + ",") == DecodeStatus::kBadFieldCount);
  CHECK(Status(d.get(), "'t,'S','T','D',1,2,'2024-01-06 04:00:00'") ==
        DecodeStatus::kBadFieldCount);  // the first quote closes only at the end
  CHECK(Status(d.get(), "'t','S','T','D',1,2,'2024-01-06 04:00:00") ==
        DecodeStatus::kBadFieldCount);  // never closed
  CHECK(Status(d.get(), "'t','','T','D',1,2,'2024-01-06 04:00:00'") == DecodeStatus::kMissingField);
  CHECK(Status(d.get(), "'t','S','','D',1,2,'2024-01-06 04:00:00'") == DecodeStatus::kMissingField);
  CHECK(Status(d.get(), "'t','S','T','',1,2,'2024-01-06 04:00:00'") == DecodeStatus::kMissingField);
  CHECK(Status(d.get(), "'t','S','T','D',1,2,''") == DecodeStatus::kMissingField);
  CHECK(Status(d.get(), "'t','S','T','D',1,2,") == DecodeStatus::kMissingField);
  CHECK(Status(d.get(), "'t','S','T','D',,2,'2024-01-06 04:00:00'") == DecodeStatus::kMissingField);
  CHECK(Status(d.get(), "'t','S','T','D',1,'','2024-01-06 04:00:00'") ==
        DecodeStatus::kMissingField);
  CHECK(Status(d.get(), "'t','S','T','D',1,2,'yesterday'") == DecodeStatus::kBadTime);
  CHECK(Status(d.get(), Row('\'', "S", "2024-01-06 04:00:00", "1.5")) == DecodeStatus::kBadNumber);
  CHECK(Status(d.get(), Row('\'', "S", "2024-01-06 04:00:00", "9223372036854775808")) ==
        DecodeStatus::kBadNumber);
  CHECK(Status(d.get(), Row('\'', "S", "2024-01-06 04:00:00", "'x'")) == DecodeStatus::kBadNumber);
  const Decoded neg = Decode(d.get(), Row('\'', "S", "2024-01-06 04:00:00", "-3"));
  REQUIRE(neg.status == DecodeStatus::kOk);
  CHECK(neg.entries == -3);
}
