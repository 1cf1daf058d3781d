// The hot path allocates nothing per record: once a decoder has seen its largest message, every
// further Decode() runs without touching the heap, whatever the outcome.
//
// This binary replaces the global operator new to count calls, so it holds only this test.

#include <doctest/doctest.h>

#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "base/count_allocations_test_util.h"
#include "decode/decode_test_util.h"
#include "decode/decoder.h"

using turnstiled::testing::g_allocations;

using namespace turnstiled;
using namespace turnstiled::decode;
using namespace turnstiled::decode::testing;
using config::FormatType;

namespace {

// Decodes every message `rounds` times and returns how many heap allocations that took. The
// statuses are tallied into `seen` so the loop has no CHECK (doctest allocates).
long AllocationsWhileDecoding(Decoder* d, const std::vector<std::string>& msgs, int rounds,
                              int* ok) {
  Record r;
  int good = 0;
  const long before = g_allocations;
  for (int i = 0; i < rounds; ++i) {
    for (const std::string& m : msgs) good += d->Decode(m, &r) == DecodeStatus::kOk;
  }
  const long after = g_allocations;
  *ok = good;
  return after - before;
}

void CheckNoAllocations(FormatType type, const std::vector<std::string>& msgs) {
  auto d = Make(type, "America/New_York");
  int ok = 0;
  AllocationsWhileDecoding(d.get(), msgs, 1, &ok);  // warm up: buffers grow to fit
  CHECK(ok > 0);
  CHECK(AllocationsWhileDecoding(d.get(), msgs, 50, &ok) == 0);
  CHECK(ok > 0);
}

}  // namespace

TEST_CASE("the allocation counter sees a string grow") {
  const long before = g_allocations;
  std::string s(1000, 'x');
  CHECK(g_allocations > before);
}

TEST_CASE("mta-csv allocates nothing per record, quoted rows and DST days included") {
  CheckNoAllocations(
      FormatType::kMtaCsv,
      {
          "A002,R051,02-00-00,59 ST,NQR456W,BMT,12/30/2023,03:00:00,REGULAR,102019,73801",
          "C/A,UNIT,SCP,STATION,LINENAME,DIVISION,DATE,TIME,DESC,ENTRIES,EXITS   \n"
          "N519,R461,00-00-00,B'WAY-LAFAYETTE,BDFQ6,IND,03/10/2024,02:30:00,REGULAR,1,2\r\n",
          "\"N519\",\"R461\",\"00-00-01\",\"B'WAY-LAFAYETTE\",B,IND,11/03/2024,01:30:00,R,1,2",
          "\"A\",\"B\",\"C\",\"S\",B,IND,11-03-24,01:30:00,R,1,2,7,2024-11-03 01:30:00",
          "R001,R101,00-00-00,SOUTH FERRY,1RW,IRT,01/06/2024,04:00:00,REGULAR,x,2",
          "",
          "C/A,UNIT,SCP",
          "too,few,fields",
      });
}

TEST_CASE("seed-csv allocates nothing per record, escaped quotes included") {
  CheckNoAllocations(
      FormatType::kSeedCsv,
      {
          "timestamp,station,turnstile_id,device_id,entry,exit,entry_datetime\n"
          "'2024-01-06 00:00:00','2 ST','N001-R002','00-00-01',17,4,'2024-01-06 04:00:00'",
          "'t','B''WAY-LAFAYETTE','N519-R461','00-00-00',1,2,'2024-03-10 02:30:00'",
          "'t','E 143/ST MARY'S','N1','0',1,2,'2024-11-03T01:30:00Z'",
          "\"t\",\"S\",\"A-very-long-turnstile-identifier\",\"and-a-long-device-id\",1,2,"
          "\"2024-01-06 04:00:00\"",
          "'t','S','T','D',1,2,'bad'",
      });
}

TEST_CASE("json allocates nothing per record, escapes and integer devices included") {
  CheckNoAllocations(
      FormatType::kJson,
      {
          R"({"station":"2 ST","device":"N001,R002,00-00-00","time":"2024-01-06T05:00:00Z",)"
          R"("entries":12,"exits":3})",
          R"({"station":"B\u0027WAY-LAFAYETTE","device":123456789,"time":1704517200,)"
          R"("entries":12.0,"exits":3,"x":{"nested":[1,2,3]}})",
          R"({"station":"S","device":"D","time":"2024-11-03T01:30:00","entries":1,"exits":2})",
          R"({"station":"S","device":"D","time":"2024-03-10T02:30:00","entries":1,"exits":2})",
          R"({"station":5})",
          "[1,2,3]",
          "\xff",
      });
}
