#include "sink/partition_path.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "base/civil_time.h"

using namespace turnstiled::sink;

TEST_CASE("ordinary station names stay readable in partition paths") {
  CHECK(EscapePartitionValue("59 ST") == "59 ST");
  CHECK(EscapePartitionValue("TIMES SQ-42 ST") == "TIMES SQ-42 ST");
  CHECK(EscapePartitionValue("PATH NEW WTC") == "PATH NEW WTC");
  CHECK(EscapePartitionValue("B'WAY-LAFAYETTE") == "B%27WAY-LAFAYETTE");
  CHECK(EscapePartitionValue("A/B") == "A%2FB");
  CHECK(EscapePartitionValue("100%") == "100%25");
  CHECK(EscapePartitionValue("ST. GEORGE") == "ST. GEORGE");
}

TEST_CASE("dot names, empty names and leading dots never spell a special path") {
  CHECK(EscapePartitionValue("") == "%");
  CHECK(EscapePartitionValue(".") == "%2E");
  CHECK(EscapePartitionValue("..") == "%2E.");
  CHECK(EscapePartitionValue(".hidden") == "%2Ehidden");
  CHECK(EscapePartitionValue("/leading") == "%2Fleading");
  CHECK(EscapePartitionValue("with\nnewline") == "with%0Anewline");
  CHECK(EscapePartitionValue(std::string("a\0b", 3)) == "a%00b");
  CHECK(EscapePartitionValue("\xC3\x89TOILE") == "%C3%89TOILE");
}

TEST_CASE("unescaping inverts escaping for every byte string that is not cut") {
  std::vector<std::string> values = {
      "",  ".",   "..", "...",      "../../../../x",     "A/B", "%", "%%41",
      "~", "a~b", " ",  "\xFF\xFE", std::string(60, '/')};
  std::string every_byte;
  for (int c = 0; c < 256; ++c) every_byte.push_back(static_cast<char>(c));
  for (size_t i = 0; i < every_byte.size(); i += 64) values.push_back(every_byte.substr(i, 64));
  for (const std::string& v : values) {
    const std::string escaped = EscapePartitionValue(v);
    INFO("value: ", v, " escaped: ", escaped);
    CHECK(escaped.find('/') == std::string::npos);
    CHECK(escaped.find('\0') == std::string::npos);
    CHECK_FALSE(escaped.starts_with("."));
    auto back = UnescapePartitionValue(escaped);
    REQUIRE(back.ok());
    CHECK(*back == v);
  }
}

TEST_CASE("a long name is cut with a hash, stays below NAME_MAX and cannot be unescaped") {
  const std::string a(1000, 'A');
  const std::string b = std::string(999, 'A') + "B";
  const std::string ea = EscapePartitionValue(a);
  const std::string eb = EscapePartitionValue(b);
  CHECK(ea.size() <= kMaxEscapedBytes);
  CHECK(ea != eb);
  CHECK(ea.find('~') == ea.size() - 17);
  CHECK_FALSE(UnescapePartitionValue(ea).ok());
  // A cut never splits an escape.
  const std::string slashes = EscapePartitionValue(std::string(300, '/'));
  CHECK(slashes.size() <= kMaxEscapedBytes);
  CHECK((slashes.find('~') % 3) == 0);
}

TEST_CASE("unescaping refuses names escaping would never produce") {
  CHECK_FALSE(UnescapePartitionValue("").ok());
  CHECK_FALSE(UnescapePartitionValue("a%2").ok());
  CHECK_FALSE(UnescapePartitionValue("a%2f").ok());
  CHECK_FALSE(UnescapePartitionValue("a/b").ok());
  CHECK_FALSE(UnescapePartitionValue(".x").ok());
}

TEST_CASE("the partition directory has one folder per partition_by field, in order") {
  const int64_t jan6 = turnstiled::base::DaysFromCivil(2024, 1, 6) * 86400 * 1000;
  const std::vector<std::string> station_date = {"station", "date"};
  CHECK(PartitionDir(station_date, "59 ST", jan6 + 23 * 3600 * 1000) ==
        "station=59 ST/date=2024-01-06");
  CHECK(PartitionDir(station_date, "A/B", jan6 - 1) == "station=A%2FB/date=2024-01-05");
  CHECK(PartitionDir({"date"}, "A/B", jan6 - 1) == "date=2024-01-05");
  CHECK(PartitionDir({"date", "hour"}, "x", jan6 + 23 * 3600 * 1000) == "date=2024-01-06/hour=23");
  CHECK(PartitionDir({"hour"}, "x", jan6 - 1) == "hour=23");
  CHECK(PartitionDir({}, "x", jan6).empty());
}
