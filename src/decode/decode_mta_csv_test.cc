// mta-csv: the MTA weekly layout, 11 fields or 13 with the course producer's ID,TIMESTAMP.

#include <doctest/doctest.h>

#include <string>

#include "decode/decode_test_util.h"
#include "decode/decoder.h"
#include "decode/mta_csv.h"
#include "decode/scan.h"

using namespace turnstiled;
using namespace turnstiled::decode;
using namespace turnstiled::decode::testing;
using config::FormatType;

namespace {

constexpr char kRow[] =
    "A002,R051,02-00-00,59 ST,NQR456W,BMT,12/30/2023,03:00:00,REGULAR,102019,73801";
// The 2023 file's header: the MTA's own, with 63 trailing spaces.
const std::string kHeader2023 =
    "C/A,UNIT,SCP,STATION,LINENAME,DIVISION,DATE,TIME,DESC,ENTRIES,EXITS" + std::string(63, ' ');
constexpr char kHeader[] = "C/A,UNIT,SCP,STATION,LINENAME,DIVISION,DATE,TIME,DESC,ENTRIES,EXITS";

std::unique_ptr<Decoder> Mta(const std::string& zone = "UTC", int64_t max_bytes = 64 * 1024) {
  return Make(FormatType::kMtaCsv, zone, max_bytes);
}

// kRow with its DATE and TIME replaced.
std::string RowAt(const std::string& date, const std::string& time) {
  return "A002,R051,02-00-00,59 ST,NQR456W,BMT," + date + "," + time + ",REGULAR,102019,73801";
}

// kRow with its ENTRIES replaced.
std::string RowWithEntries(const std::string& entries) {
  return "A002,R051,02-00-00,59 ST,NQR456W,BMT,12/30/2023,03:00:00,REGULAR," + entries + ",73801";
}

}  // namespace

TEST_CASE("an 11-field MTA row gives device C/A,UNIT,SCP, station STATION and both registers") {
  auto d = Mta("America/New_York");
  const Decoded r = Decode(d.get(), kRow);
  REQUIRE(r.status == DecodeStatus::kOk);
  CHECK(r.device == "A002,R051,02-00-00");
  CHECK(r.station == "59 ST");
  CHECK(r.entries == 102019);
  CHECK(r.exits == 73801);
  CHECK(r.event_ms == Utc(2023, 12, 30, 8, 0, 0));  // 03:00 EST is 08:00 UTC
}

TEST_CASE("the device is a view into the message when no field is quoted") {
  auto d = Mta();
  const std::string msg = kRow;
  Record r;
  REQUIRE(d->Decode(msg, &r) == DecodeStatus::kOk);
  CHECK(r.device.data() == msg.data());
  CHECK(r.station.data() == msg.data() + 19);
}

TEST_CASE("13 fields with the producer's trailing ID,TIMESTAMP are accepted and ignored") {
  auto d = Mta("America/New_York");
  const Decoded r =
      Decode(d.get(), std::string(kRow) + ",42,2023-1230 09:15:07");  // TIMESTAMP is not read
  REQUIRE(r.status == DecodeStatus::kOk);
  const Decoded r2 = Decode(d.get(), std::string(kRow) + ",42,2024-01-06 11:22:33");
  REQUIRE(r2.status == DecodeStatus::kOk);
  for (const Decoded& x : {r, r2}) {
    CHECK(x.device == "A002,R051,02-00-00");
    CHECK(x.station == "59 ST");
    CHECK(x.event_ms == Utc(2023, 12, 30, 8, 0, 0));  // DATE+TIME, not TIMESTAMP
    CHECK(x.entries == 102019);
    CHECK(x.exits == 73801);
  }
}

TEST_CASE("any field count other than 11 or 13 is bad_field_count") {
  auto d = Mta();
  const std::string row = kRow;
  CHECK(Status(d.get(), row.substr(0, row.rfind(','))) == DecodeStatus::kBadFieldCount);  // 10
  CHECK(Status(d.get(), row + ",42") == DecodeStatus::kBadFieldCount);                    // 12
  CHECK(Status(d.get(), row + ",42,2024-01-06 00:00:00,x") == DecodeStatus::kBadFieldCount);
  CHECK(Status(d.get(), row + ",,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,") ==
        DecodeStatus::kBadFieldCount);  // more commas than the scanner records
  CHECK(Status(d.get(), "hello") == DecodeStatus::kBadFieldCount);
  CHECK(Status(d.get(), ",,,,,,,,,") == DecodeStatus::kBadFieldCount);
}

TEST_CASE("DATE may be MM/DD/YYYY or MM-DD-YY (20YY), and the separators may be swapped") {
  auto d = Mta();
  const int64_t want = Utc(2023, 12, 30, 3, 0, 0);
  for (const char* date : {"12/30/2023", "12-30-23", "12-30-2023", "12/30/23"}) {
    CAPTURE(std::string(date));
    const Decoded r = Decode(d.get(), RowAt(date, "03:00:00"));
    REQUIRE(r.status == DecodeStatus::kOk);
    CHECK(r.event_ms == want);
  }
  CHECK(Decode(d.get(), RowAt("01-06-24", "23:59:59")).event_ms == Utc(2024, 1, 6, 23, 59, 59));
  CHECK(Decode(d.get(), RowAt("02/29/2024", "00:00:00")).event_ms == Utc(2024, 2, 29));
  CHECK(Decode(d.get(), RowAt("01/01/1970", "00:00:00")).event_ms == 0);
}

TEST_CASE("a DATE or TIME that does not parse or does not exist is bad_time") {
  auto d = Mta();
  const struct {
    const char* date;
    const char* time;
  } cases[] = {
      {"2023-12-30", "03:00:00"},  // ISO order
      {"12/30-2023", "03:00:00"},  // mixed separators
      {"12.30.2023", "03:00:00"}, {"13/01/2024", "00:00:00"},  {"00/10/2024", "00:00:00"},
      {"02/30/2024", "00:00:00"}, {"02/29/2023", "00:00:00"},  {"01/00/2024", "00:00:00"},
      {"1/6/2024", "00:00:00"},   {"12/30/202", "03:00:00"},   {"", "03:00:00"},
      {"12/30/2023", ""},         {"12/30/2023", "24:00:00"},  {"12/30/2023", "23:60:00"},
      {"12/30/2023", "23:59:60"}, {"12/30/2023", "3:00:00"},   {"12/30/2023", "03:00"},
      {"12/30/2023", "03-00-00"}, {"12/30/2023", "03:00:00 "}, {"12/30/2023", "0x:00:00"},
      {"ab/cd/efgh", "03:00:00"},
  };
  for (const auto& c : cases) {
    CAPTURE(std::string(c.date));
    CAPTURE(std::string(c.time));
    CHECK(Status(d.get(), RowAt(c.date, c.time)) == DecodeStatus::kBadTime);
  }
}

TEST_CASE("local times are read in format.timezone, in winter and in summer") {
  auto utc = Mta("UTC");
  auto ny = Mta("America/New_York");
  CHECK(Decode(utc.get(), RowAt("01/06/2024", "04:00:00")).event_ms == Utc(2024, 1, 6, 4));
  CHECK(Decode(ny.get(), RowAt("01/06/2024", "04:00:00")).event_ms == Utc(2024, 1, 6, 9));
  CHECK(Decode(ny.get(), RowAt("05/27/2023", "00:00:00")).event_ms == Utc(2023, 5, 27, 4));
  // Midnight on the first of a month reads the right day from the per-day cache.
  CHECK(Decode(ny.get(), RowAt("01/01/2024", "00:00:00")).event_ms == Utc(2024, 1, 1, 5));
  CHECK(Decode(ny.get(), RowAt("12/31/2023", "23:59:59")).event_ms == Utc(2024, 1, 1, 4, 59, 59));
}

TEST_CASE("a wall time skipped by spring-forward is read with the offset before the change") {
  auto d = Mta("America/New_York");
  // 2024-03-10: clocks go from 02:00 EST straight to 03:00 EDT (07:00 UTC).
  CHECK(Decode(d.get(), RowAt("03/10/2024", "01:59:59")).event_ms == Utc(2024, 3, 10, 6, 59, 59));
  // 02:30 does not exist; read as 02:30 EST, which is the instant 03:30 EDT.
  CHECK(Decode(d.get(), RowAt("03/10/2024", "02:30:00")).event_ms == Utc(2024, 3, 10, 7, 30));
  CHECK(Decode(d.get(), RowAt("03/10/2024", "02:00:00")).event_ms == Utc(2024, 3, 10, 7, 0));
  CHECK(Decode(d.get(), RowAt("03/10/2024", "03:00:00")).event_ms == Utc(2024, 3, 10, 7, 0));
  CHECK(Decode(d.get(), RowAt("03/10/2024", "04:00:00")).event_ms == Utc(2024, 3, 10, 8, 0));
  CHECK(Decode(d.get(), RowAt("03/10/2024", "23:00:00")).event_ms == Utc(2024, 3, 11, 3, 0));
}

TEST_CASE("a wall time repeated by fall-back is read as its first occurrence") {
  auto d = Mta("America/New_York");
  // 2024-11-03: clocks go from 02:00 EDT back to 01:00 EST (06:00 UTC); 01:xx happens twice.
  CHECK(Decode(d.get(), RowAt("11/03/2024", "00:59:59")).event_ms == Utc(2024, 11, 3, 4, 59, 59));
  CHECK(Decode(d.get(), RowAt("11/03/2024", "01:00:00")).event_ms == Utc(2024, 11, 3, 5, 0));
  CHECK(Decode(d.get(), RowAt("11/03/2024", "01:30:00")).event_ms == Utc(2024, 11, 3, 5, 30));
  CHECK(Decode(d.get(), RowAt("11/03/2024", "01:59:59")).event_ms == Utc(2024, 11, 3, 5, 59, 59));
  CHECK(Decode(d.get(), RowAt("11/03/2024", "02:00:00")).event_ms == Utc(2024, 11, 3, 7, 0));
  CHECK(Decode(d.get(), RowAt("11/03/2024", "12:00:00")).event_ms == Utc(2024, 11, 3, 17, 0));
  // The same again after other days have been through the converter's cache.
  CHECK(Decode(d.get(), RowAt("11/04/2024", "01:30:00")).event_ms == Utc(2024, 11, 4, 6, 30));
  CHECK(Decode(d.get(), RowAt("11/03/2024", "01:30:00")).event_ms == Utc(2024, 11, 3, 5, 30));
}

TEST_CASE("header rows are skipped: C/A or CA first, trailing spaces, quotes, CRLF") {
  auto d = Mta();
  CHECK(Status(d.get(), kHeader) == DecodeStatus::kHeader);
  CHECK(Status(d.get(), kHeader2023) == DecodeStatus::kHeader);
  CHECK(Status(d.get(), kHeader2023 + "\n") == DecodeStatus::kHeader);
  CHECK(Status(d.get(), std::string(kHeader) + "\r\n") == DecodeStatus::kHeader);
  CHECK(Status(d.get(), "CA,UNIT,SCP,STATION,LINENAME,DIVISION,DATE,TIME,DESC,ENTRIES,EXITS") ==
        DecodeStatus::kHeader);
  CHECK(Status(d.get(),
               "\"C/A\",\"UNIT\",\"SCP\",\"STATION\",\"LINENAME\",\"DIVISION\",\"DATE\","
               "\"TIME\",\"DESC\",\"ENTRIES\",\"EXITS\"") == DecodeStatus::kHeader);
  CHECK(Status(d.get(), "  C/A ,UNIT,SCP") == DecodeStatus::kHeader);
  CHECK(Status(d.get(), "C/A") == DecodeStatus::kHeader);
  // The 13-field producer's header.
  CHECK(Status(d.get(), std::string(kHeader) + ",ID,TIMESTAMP") == DecodeStatus::kHeader);
  CHECK(Status(d.get(), std::string(kHeader) + "\n" + kHeader2023) == DecodeStatus::kHeader);
  CHECK(MtaCsvDecoder::IsHeader(kHeader2023));
  CHECK_FALSE(MtaCsvDecoder::IsHeader(kRow));
}

TEST_CASE("a message of a header and a row decodes the row, in either order") {
  auto d = Mta();
  for (const std::string& msg : {
           std::string(kHeader) + "\n" + kRow,
           kHeader2023 + "\n" + kRow + "\n",
           std::string(kHeader) + "\r\n" + kRow + "\r\n",
           std::string(kRow) + "\n" + kHeader,
           std::string("\n\n") + kHeader + "\n\n" + kRow + "\n\n" + kHeader + "\n",
           std::string(kHeader) + ",ID,TIMESTAMP\n" + kRow + ",7,2023-12-30 03:00:01",
       }) {
    CAPTURE(msg);
    const Decoded r = Decode(d.get(), msg);
    REQUIRE(r.status == DecodeStatus::kOk);
    CHECK(r.device == "A002,R051,02-00-00");
    CHECK(r.station == "59 ST");
    CHECK(r.entries == 102019);
    CHECK(r.exits == 73801);
  }
}

TEST_CASE("a message holds one record: a second row makes it bad_field_count") {
  auto d = Mta();
  const std::string row = kRow;
  CHECK(Status(d.get(), row + "\n" + row) == DecodeStatus::kBadFieldCount);
  CHECK(Status(d.get(), std::string(kHeader) + "\n" + row + "\n" + row) ==
        DecodeStatus::kBadFieldCount);
  CHECK(Status(d.get(), row + "\n\n  \r\nx") == DecodeStatus::kBadFieldCount);
}

TEST_CASE("CRLF line endings and surrounding blanks are trimmed") {
  auto d = Mta();
  for (const std::string& msg : {std::string(kRow) + "\r\n", std::string(kRow) + "\r",
                                 std::string(" \t") + kRow + " \r\n", std::string(kRow) + "   "}) {
    CAPTURE(msg);
    const Decoded r = Decode(d.get(), msg);
    REQUIRE(r.status == DecodeStatus::kOk);
    CHECK(r.device == "A002,R051,02-00-00");
    CHECK(r.exits == 73801);
  }
  const Decoded r13 = Decode(d.get(), std::string(kRow) + ",1,2023-12-30 03:00:00\r\n");
  REQUIRE(r13.status == DecodeStatus::kOk);
  CHECK(r13.exits == 73801);
}

TEST_CASE("double-quoted fields are unquoted and may hold commas") {
  auto d = Mta();
  const Decoded r = Decode(d.get(),
                           "\"A002\",\"R051\",\"02-00-00\",\"LEXINGTON AV, 53 ST\",\"EM6\",\"IND\","
                           "\"12/30/2023\",\"03:00:00\",\"RECOVR AUD\",\"102019\",\"73801\"");
  REQUIRE(r.status == DecodeStatus::kOk);
  CHECK(r.device == "A002,R051,02-00-00");
  CHECK(r.station == "LEXINGTON AV, 53 ST");
  CHECK(r.event_ms == Utc(2023, 12, 30, 3));
  CHECK(r.entries == 102019);
  CHECK(r.exits == 73801);
  // Only some fields quoted, with CRLF.
  const Decoded r2 = Decode(
      d.get(), "A002,R051,\"02-00-00\",59 ST,NQR456W,BMT,12/30/2023,03:00:00,REGULAR,1,2\r\n");
  REQUIRE(r2.status == DecodeStatus::kOk);
  CHECK(r2.device == "A002,R051,02-00-00");
  CHECK(r2.exits == 2);
  // A quote that is never closed, or text after a closing quote.
  CHECK(Status(d.get(), "\"A002,R051,02-00-00,59 ST,NQR456W,BMT,12/30/2023,03:00:00,REGULAR,1,2") ==
        DecodeStatus::kBadFieldCount);
  CHECK(Status(d.get(), "\"A002\"x,R051,02-00-00,59 ST,NQR456W,BMT,12/30/2023,03:00:00,R,1,2") ==
        DecodeStatus::kBadFieldCount);
}

TEST_CASE("the station is STATION as it stands: apostrophes, slashes and inner blanks kept") {
  auto d = Mta();
  for (const char* station : {"B'WAY-LAFAYETTE", "E 143/ST MARY'S", "59 ST", "ST. GEORGE"}) {
    const std::string row = std::string("N519,R461,00-00-00,") + station +
                            ",BDFQ6,IND,12/30/2023,00:00:00,REGULAR,353563,2301991";
    const Decoded r = Decode(d.get(), row);
    REQUIRE(r.status == DecodeStatus::kOk);
    CHECK(r.station == station);
    CHECK(r.device == "N519,R461,00-00-00");
  }
}

TEST_CASE("LINENAME, DIVISION and DESC may be empty; the key fields may not") {
  auto d = Mta();
  CHECK(Status(d.get(), "A002,R051,02-00-00,59 ST,,,12/30/2023,03:00:00,,1,2") ==
        DecodeStatus::kOk);
  CHECK(Status(d.get(), ",R051,02-00-00,59 ST,N,BMT,12/30/2023,03:00:00,R,1,2") ==
        DecodeStatus::kMissingField);
  CHECK(Status(d.get(), "A002,,02-00-00,59 ST,N,BMT,12/30/2023,03:00:00,R,1,2") ==
        DecodeStatus::kMissingField);
  CHECK(Status(d.get(), "A002,R051,,59 ST,N,BMT,12/30/2023,03:00:00,R,1,2") ==
        DecodeStatus::kMissingField);
  CHECK(Status(d.get(), "A002,R051,02-00-00,,N,BMT,12/30/2023,03:00:00,R,1,2") ==
        DecodeStatus::kMissingField);
  CHECK(Status(d.get(), "A002,R051,02-00-00,\"\",N,BMT,12/30/2023,03:00:00,R,1,2") ==
        DecodeStatus::kMissingField);
  CHECK(Status(d.get(), RowWithEntries("")) == DecodeStatus::kMissingField);
  CHECK(Status(d.get(), RowWithEntries("  ")) == DecodeStatus::kMissingField);
  CHECK(Status(d.get(), RowWithEntries("\"\"")) == DecodeStatus::kMissingField);
  CHECK(Status(d.get(), "A002,R051,02-00-00,59 ST,N,BMT,12/30/2023,03:00:00,R,1,") ==
        DecodeStatus::kMissingField);
  CHECK(Status(d.get(), "A002,R051,02-00-00,59 ST,N,BMT,12/30/2023,03:00:00,R,1,\r\n") ==
        DecodeStatus::kMissingField);
}

TEST_CASE("reasons are checked in order: key fields, then time, then ENTRIES, then EXITS") {
  auto d = Mta();
  CHECK(Status(d.get(), ",R051,02-00-00,59 ST,N,BMT,99/99/9999,03:00:00,R,x,y") ==
        DecodeStatus::kMissingField);
  CHECK(Status(d.get(), "A002,R051,02-00-00,59 ST,N,BMT,99/99/9999,03:00:00,R,x,y") ==
        DecodeStatus::kBadTime);
  CHECK(Status(d.get(), "A002,R051,02-00-00,59 ST,N,BMT,12/30/2023,03:00:00,R,x,") ==
        DecodeStatus::kBadNumber);
  CHECK(Status(d.get(), "A002,R051,02-00-00,59 ST,N,BMT,12/30/2023,03:00:00,R,,y") ==
        DecodeStatus::kMissingField);
}

TEST_CASE("counters are signed 64-bit decimal integers; anything else is bad_number") {
  auto d = Mta();
  const struct {
    const char* text;
    int64_t value;
  } good[] = {
      {"0", 0},
      {"0004800073", 4800073},  // the MTA's zero padding
      {"2147178400", 2147178400},
      {"9223372036854775807", INT64_MAX},
      {"-5", -5},  // accepted: the window layer handles any sign (SPEC §3, 64-bit deltas)
      {"-9223372036854775808", INT64_MIN},
      {"+7", 7},
      {" 12 ", 12},
  };
  for (const auto& g : good) {
    CAPTURE(std::string(g.text));
    const Decoded r = Decode(d.get(), RowWithEntries(g.text));
    REQUIRE(r.status == DecodeStatus::kOk);
    CHECK(r.entries == g.value);
  }
  for (const char* bad :
       {"9223372036854775808", "-9223372036854775809", "99999999999999999999999", "12.0", "1e3",
        "0x10", "12a", "a12", "1 2", "-", "+", "+-5", "-+5", "++5", "--5", "NaN"}) {
    CAPTURE(std::string(bad));
    CHECK(Status(d.get(), RowWithEntries(bad)) == DecodeStatus::kBadNumber);
  }
}

TEST_CASE("the 8-bytes-at-a-time counter parse agrees with the digit loop") {
  // Every length from 1 to 20, a field at every distance from the line's start (so the bytes
  // before it, read and masked, are sometimes digits, sometimes not), and a non-digit at every
  // position. Each case must give what ParseCounter gives.
  const std::string digits = "98765432109876543210";
  for (size_t len = 1; len <= digits.size(); ++len) {
    for (size_t at = 0; at <= 20; ++at) {
      for (const char before : {'7', ','}) {
        for (size_t bad = 0; bad <= len; ++bad) {  // bad == len: all digits
          for (const char c : {'/', ':', ' ', '-', 'a', '\x80'}) {
            std::string line(at, before);
            std::string field = digits.substr(0, len);
            if (bad < len) field[bad] = c;
            line += field;
            line += ",5";
            const std::string_view f(line.data() + at, len);
            int64_t fast = -1;
            int64_t slow = -1;
            const DecodeStatus fs = scan::ParseCounterIn(line.data(), f, &fast);
            const DecodeStatus ss = scan::ParseCounter(f, &slow);
            CAPTURE(line);
            CAPTURE(len);
            REQUIRE(fs == ss);
            if (fs == DecodeStatus::kOk) REQUIRE(fast == slow);
            if (bad == len) break;  // the all-digit field needs no replacement byte
          }
        }
      }
    }
  }
  int64_t v = 0;
  const std::string line = "xxxxxxxxxxxxxxxx0000000000000099";
  REQUIRE(scan::ParseCounterIn(line.data(), std::string_view(line).substr(16), &v) ==
          DecodeStatus::kOk);
  CHECK(v == 99);
  REQUIRE(scan::ParseCounterIn(line.data(), std::string_view(line).substr(8), &v) ==
          DecodeStatus::kBadNumber);
}

TEST_CASE("empty and oversized messages") {
  auto d = Mta("UTC", /*max_bytes=*/sizeof kRow - 1);
  CHECK(Status(d.get(), "") == DecodeStatus::kEmpty);
  CHECK(Status(d.get(), "\n") == DecodeStatus::kEmpty);
  CHECK(Status(d.get(), " \t\r\n\r\n  ") == DecodeStatus::kEmpty);
  CHECK(Status(d.get(), kRow) == DecodeStatus::kOk);  // exactly the limit
  CHECK(Status(d.get(), std::string(kRow) + "\n") == DecodeStatus::kOversized);
  CHECK(Status(d.get(), std::string(1 << 20, ',')) == DecodeStatus::kOversized);
}

TEST_CASE("bytes that are not UTF-8 anywhere in the message are not_utf8") {
  auto d = Mta();
  const std::string row = kRow;
  CHECK(Status(d.get(), "A002,R051,02-00-00,59 ST\xff,NQR456W,BMT,12/30/2023,03:00:00,R,1,2") ==
        DecodeStatus::kNotUtf8);
  CHECK(Status(d.get(), "A002,R051,02-00-00,59 ST,NQR456W,BMT,12/30/2023,03:00:00,R\xc3,1,2") ==
        DecodeStatus::kNotUtf8);  // a sequence cut short
  CHECK(Status(d.get(), "\"A002\",R051,02-00-00,\xc0\xaf,N,BMT,12/30/2023,03:00:00,R,1,2") ==
        DecodeStatus::kNotUtf8);  // an overlong '/', on the quoted path
  CHECK(Status(d.get(), "C/A,UNIT\xfe\n" + row) == DecodeStatus::kNotUtf8);
  CHECK(Status(d.get(), row + "\n\xff") == DecodeStatus::kNotUtf8);
  CHECK(Status(d.get(), row + "\n" + kHeader + "\xe9") == DecodeStatus::kNotUtf8);
  // Valid UTF-8 beyond ASCII is a station name like any other, at any position in the line.
  for (size_t pad = 0; pad < 20; ++pad) {
    const std::string station = std::string(pad, 'X') + "CAF\xc3\x89 \xe2\x80\x94 \xf0\x9f\x9a\x87";
    const Decoded r = Decode(
        d.get(), "A002,R051,02-00-00," + station + ",NQR456W,BMT,12/30/2023,03:00:00,REGULAR,1,2");
    REQUIRE(r.status == DecodeStatus::kOk);
    CHECK(r.station == station);
  }
}

TEST_CASE("a quoted row builds its device in the decoder, and the next row's view is fresh") {
  auto d = Mta();
  Record r;
  REQUIRE(d->Decode("\"N519\",\"R461\",\"00-00-00\",\"B'WAY-LAFAYETTE\",B,IND,12/30/2023,"
                    "00:00:00,REGULAR,1,2",
                    &r) == DecodeStatus::kOk);
  CHECK(r.device == "N519,R461,00-00-00");
  REQUIRE(d->Decode("\"A\",\"B\",\"C\",S,B,IND,12/30/2023,00:00:00,REGULAR,1,2", &r) ==
          DecodeStatus::kOk);
  CHECK(r.device == "A,B,C");
  REQUIRE(d->Decode(kRow, &r) == DecodeStatus::kOk);
  CHECK(r.device == "A002,R051,02-00-00");
}

TEST_CASE("every status has its metric label, and the set has kDecodeStatusCount values") {
  const char* want[] = {"ok",         "header",          "empty",         "oversized",
                        "not_utf8",   "bad_field_count", "missing_field", "bad_time",
                        "bad_number", "wrong_type"};
  static_assert(sizeof want / sizeof want[0] == kDecodeStatusCount);
  for (int i = 0; i < kDecodeStatusCount; ++i) {
    CHECK(std::string(Name(static_cast<DecodeStatus>(i))) == want[i]);
  }
}

TEST_CASE("MakeDecoder refuses an unknown time zone by name") {
  config::FormatConfig format;
  format.timezone = "Mars/Olympus_Mons";
  auto d = MakeDecoder(format);
  REQUIRE_FALSE(d.ok());
  CHECK(d.status().message() == "unknown time zone 'Mars/Olympus_Mons'");
  format.timezone = "Etc/UTC";
  CHECK(MakeDecoder(format).ok());
}
