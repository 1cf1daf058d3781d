#include "base/input_file.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>

using turnstiled::base::LineChunkReader;
using turnstiled::base::ReadWholeFile;

namespace {
std::string TempPath(const char* name) {
  return std::string("/tmp/turnstiled-input-") + std::to_string(::getpid()) + "-" + name;
}

// Writes `text` to a temp file `name` and a zstd copy of it beside (made with the `zstd` CLI
// and its `flags`); returns {plain, zst}.
std::pair<std::string, std::string> WritePlainAndZst(const char* name, const std::string& text,
                                                     const std::string& flags = "") {
  const std::string plain = TempPath(name);
  std::ofstream(plain) << text;
  const std::string zst = plain + ".zst";
  REQUIRE(std::system(("zstd -q -f " + flags + " -o " + zst + " " + plain).c_str()) == 0);
  return {plain, zst};
}

// Every chunk of `path` joined, and the reader's status once Next() has returned false.
std::pair<std::string, turnstiled::base::Status> ReadAll(const std::string& path, bool read_ahead) {
  auto r = LineChunkReader::Open(path, nullptr, {}, read_ahead);
  REQUIRE(r.ok());
  std::string joined;
  std::string_view chunk;
  while ((*r)->Next(&chunk)) joined.append(chunk);
  return {joined, (*r)->status()};
}
}  // namespace

TEST_CASE("chunks always end on a line boundary, for plain and zstd files alike") {
  std::string text;
  for (int i = 0; i < 200000; ++i) text += "line " + std::to_string(i) + ",some,fields\n";
  text += "last line without newline";
  const auto [plain, zst] = WritePlainAndZst("plain.txt", text);
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

TEST_CASE("reading ahead on a thread returns the same chunks, and stops cleanly when dropped") {
  std::string text;
  for (int i = 0; i < 300000; ++i) text += "line " + std::to_string(i) + ",some,fields\n";
  text += std::string(3 * LineChunkReader::kChunkBytes, 'x') + "\n";  // one line over 2 chunks
  for (int i = 0; i < 1000; ++i) text += "after " + std::to_string(i) + "\n";
  text += "last line without newline";
  const auto [plain, zst] = WritePlainAndZst("ahead.txt", text);
  for (const std::string& path : {plain, zst}) {
    INFO("path: ", path);
    auto here = LineChunkReader::Open(path);
    auto ahead = LineChunkReader::Open(path, nullptr, {}, /*read_ahead=*/true);
    REQUIRE(here.ok());
    REQUIRE(ahead.ok());
    CHECK_FALSE((*here)->reads_ahead());
    CHECK((*ahead)->reads_ahead());
    std::string_view a;
    std::string_view b;
    std::string joined;
    int chunks = 0;
    for (;;) {
      const bool got_here = (*here)->Next(&a);
      const std::string copy(a);  // `a` stays valid; `b` is checked before the next call
      const bool got_ahead = (*ahead)->Next(&b);
      REQUIRE(got_here == got_ahead);
      if (!got_here) break;
      ++chunks;
      CHECK(copy == b);
      joined.append(b);
    }
    CHECK((*ahead)->status().ok());
    CHECK(chunks > 5);  // more than the read-ahead slots: they are reused
    CHECK(joined == text);

    // Dropped after one chunk, while the thread waits for a free slot: it stops and joins.
    auto dropped = LineChunkReader::Open(path, nullptr, {}, /*read_ahead=*/true);
    REQUIRE(dropped.ok());
    REQUIRE((*dropped)->Next(&b));
    dropped->reset();
  }
  std::remove(plain.c_str());
  std::remove(zst.c_str());
}

TEST_CASE("reading ahead reports a corrupt zstd file as an error once its good chunks are read") {
  std::string text;
  for (int i = 0; i < 400000; ++i) text += "line " + std::to_string(i) + ",some,fields\n";
  const auto [plain, zst] = WritePlainAndZst("corrupt.txt", text);
  std::string bytes;
  {
    std::ifstream in(zst, std::ios::binary);
    bytes.resize(std::filesystem::file_size(zst));
    in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  REQUIRE(bytes.size() > 1000);
  for (size_t i = bytes.size() / 2; i < bytes.size() / 2 + 64; ++i) bytes[i] = '\xff';
  std::ofstream(zst, std::ios::binary | std::ios::trunc) << bytes;
  const auto [read, status] = ReadAll(zst, /*read_ahead=*/true);
  CHECK(read.size() < text.size());
  CHECK_FALSE(status.ok());
  CHECK(status.message().find(zst) != std::string::npos);
  std::remove(plain.c_str());
  std::remove(zst.c_str());
}

TEST_CASE("a zstd file without checksums is read to its last byte, whatever the room left") {
  // Without a checksum after the last block, zstd takes in all of a file's input while it may
  // still hold decoded bytes it had no room to hand over; they must not be lost at the end of
  // the input. Many lengths, so that the end falls at many points of the buffers.
  for (int lines : {20000, 33333, 50000, 65432, 80001, 99999, 123457}) {
    std::string text;
    for (int i = 0; i < lines; ++i) {
      text.append("R").append(std::to_string(i * 7919 % 100003));
      text.append(",A").append(std::to_string(i)).append(",x\n");
    }
    const auto [plain, zst] = WritePlainAndZst("nocheck.txt", text, "--no-check");
    for (bool ahead : {false, true}) {
      const auto [joined, status] = ReadAll(zst, ahead);
      CHECK_MESSAGE(status.ok(), status.ToString());
      CHECK_MESSAGE(joined.size() == text.size(), lines << " lines, read ahead " << ahead);
      CHECK(joined == text);
    }
    std::remove(plain.c_str());
    std::remove(zst.c_str());
  }
}

TEST_CASE("a zstd file that ends inside a frame is an error, not a shorter input") {
  std::string text;
  for (int i = 0; i < 100000; ++i) text += "line " + std::to_string(i) + ",some,fields\n";
  const auto [plain, zst] = WritePlainAndZst("cut.txt", text);
  const auto size = std::filesystem::file_size(zst);
  std::filesystem::resize_file(zst, size - size / 3);
  for (bool ahead : {false, true}) {
    const auto [read, status] = ReadAll(zst, ahead);
    CHECK(read.size() < text.size());
    CHECK_FALSE(status.ok());
    CHECK(status.message().find("ends inside a zstd frame") != std::string::npos);
  }
  std::remove(plain.c_str());
  std::remove(zst.c_str());
}
