#include "tools/replay.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "base/civil_time.h"

using namespace turnstiled;
using namespace turnstiled::tools;

namespace {

std::string WriteTemp(const std::string& text) {
  char path[] = "/tmp/turnstiled_replay_test_XXXXXX";
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  REQUIRE(write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  close(fd);
  return path;
}

}  // namespace

TEST_CASE("MTA dates parse in both layouts and impossible ones are refused") {
  int64_t t = 0;
  REQUIRE(ParseMtaDateTime("01/06/2024", "03:00:00", &t));
  CHECK(t == base::DaysFromCivil(2024, 1, 6) * 86400 + 3 * 3600);
  REQUIRE(ParseMtaDateTime("01-06-24", "03:00:01", &t));
  CHECK(t == base::DaysFromCivil(2024, 1, 6) * 86400 + 3 * 3600 + 1);
  CHECK_FALSE(ParseMtaDateTime("02/30/2024", "03:00:00", &t));
  CHECK_FALSE(ParseMtaDateTime("01/06/2024", "24:00:00", &t));
  CHECK_FALSE(ParseMtaDateTime("2024-01-06", "03:00:00", &t));
}

TEST_CASE("replay sorts rows of all files by time, stably, and skips headers") {
  const std::string a = WriteTemp(
      "C/A,UNIT,SCP,STATION,LINENAME,DIVISION,DATE,TIME,DESC,ENTRIES,EXITS      \n"
      "A,R1,00,X ST,1,IRT,01/06/2024,04:00:00,REGULAR,10,1\n"
      "A,R1,00,X ST,1,IRT,01/06/2024,08:00:00,REGULAR,20,2\n"
      "A,R1,00,X ST,1,IRT,01/06/2024,08:00:00,RECOVR AUD,5,2\n"
      "B,R2,00,Y ST,1,IRT,01/06/2024,00:00:00,REGULAR,1,1\r\n");
  const std::string b = WriteTemp(
      "CA,UNIT,SCP,STATION,LINENAME,DIVISION,DATE,TIME,DESC,ENTRIES,EXITS\n"
      "C,R3,00,Z ST,1,IRT,01/06/2024,08:00:00,REGULAR,7,7");
  auto set = ReplaySet::Load({a, b});
  REQUIRE(set.ok());
  const auto& rows = set->rows();
  REQUIRE(rows.size() == 5);
  CHECK(set->headers_skipped() == 2);
  CHECK(rows[0].line == "B,R2,00,Y ST,1,IRT,01/06/2024,00:00:00,REGULAR,1,1");
  CHECK(rows[1].line == "A,R1,00,X ST,1,IRT,01/06/2024,04:00:00,REGULAR,10,1");
  CHECK(rows[2].line == "A,R1,00,X ST,1,IRT,01/06/2024,08:00:00,REGULAR,20,2");
  CHECK(rows[3].line == "A,R1,00,X ST,1,IRT,01/06/2024,08:00:00,RECOVR AUD,5,2");
  CHECK(rows[4].line == "C,R3,00,Z ST,1,IRT,01/06/2024,08:00:00,REGULAR,7,7");
  CHECK(rows[4].station == "Z ST");
  std::remove(a.c_str());
  std::remove(b.c_str());
}

TEST_CASE("replay refuses a row that is not an MTA row, naming the file and line") {
  const std::string a = WriteTemp("A,R1,00,X ST,1,IRT,yesterday,04:00:00,REGULAR,10,1\n");
  auto set = ReplaySet::Load({a});
  REQUIRE_FALSE(set.ok());
  CHECK(set.status().message().find(a + ":1:") == 0);
  std::remove(a.c_str());
  CHECK_FALSE(ReplaySet::Load({"/nonexistent/file.zst"}).ok());
}
