#include "base/input_file.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

using turnstiled::base::LineChunkReader;
using turnstiled::base::ReadWholeFile;

namespace {
std::string TempPath(const char* name) {
  return std::string("/tmp/turnstiled-input-") + std::to_string(::getpid()) + "-" + name;
}
}  // namespace

TEST_CASE("chunks always end on a line boundary, for plain and zstd files alike") {
  std::string text;
  for (int i = 0; i < 200000; ++i) text += "line " + std::to_string(i) + ",some,fields\n";
  text += "last line without newline";
  const std::string plain = TempPath("plain.txt");
  std::ofstream(plain) << text;
  const std::string zst = plain + ".zst";
  REQUIRE(std::system(("zstd -q -f -o " + zst + " " + plain).c_str()) == 0);
  for (const std::string& path : {plain, zst}) {
    auto r = LineChunkReader::Open(path);
    REQUIRE(r.ok());
    CHECK((*r)->compressed() == (path == zst));
    std::string joined;
    std::string_view chunk;
    int chunks = 0;
    while ((*r)->Next(&chunk)) {
      ++chunks;
      if (joined.size() + chunk.size() < text.size()) CHECK(chunk.back() == '\n');
      joined.append(chunk);
    }
    CHECK((*r)->status().ok());
    CHECK(chunks > 3);
    CHECK(joined == text);
  }
  auto whole = ReadWholeFile(zst);
  REQUIRE(whole.ok());
  CHECK(*whole == text);
  std::remove(plain.c_str());
  std::remove(zst.c_str());
}

TEST_CASE("a missing file is an error that names the path") {
  auto r = LineChunkReader::Open("/nonexistent/file.txt");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find("/nonexistent/file.txt") != std::string::npos);
}
