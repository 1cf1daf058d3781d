#include "state/snapshot.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>

#include "base/crc32c.h"
#include "state/local_store.h"

using namespace turnstiled;
using namespace turnstiled::state;

namespace {

window::PartitionState Sample() {
  window::PartitionState s;
  s.topic = "turnstile-stream";
  s.partition = 3;
  s.next_offset = 123456;
  s.high_ms = 1704513600000;
  s.closed_through = std::numeric_limits<int64_t>::min();
  for (int i = 0; i < 50; ++i) {
    s.devices.push_back({"59 ST", "A002,R051,02-00-0" + std::to_string(i), 1704513600000 + i,
                         std::numeric_limits<int64_t>::max() - i, -i});
    s.windows.push_back({std::string("ST\0\xFF", 4) + std::to_string(i), 1704499200000 + i, i,
                         2 * i, 3 * i, 1704499200000, 1704513599000});
  }
  return s;
}

bool Same(const window::PartitionState& a, const window::PartitionState& b) {
  if (a.topic != b.topic || a.partition != b.partition || a.next_offset != b.next_offset ||
      a.high_ms != b.high_ms || a.closed_through != b.closed_through ||
      a.devices.size() != b.devices.size() || a.windows.size() != b.windows.size()) {
    return false;
  }
  for (size_t i = 0; i < a.devices.size(); ++i) {
    const auto& x = a.devices[i];
    const auto& y = b.devices[i];
    if (x.station != y.station || x.device != y.device || x.t0 != y.t0 || x.e0 != y.e0 ||
        x.x0 != y.x0) {
      return false;
    }
  }
  for (size_t i = 0; i < a.windows.size(); ++i) {
    const auto& x = a.windows[i];
    const auto& y = b.windows[i];
    if (x.station != y.station || x.start_ms != y.start_ms || x.entries != y.entries ||
        x.exits != y.exits || x.events != y.events || x.first_ms != y.first_ms ||
        x.last_ms != y.last_ms) {
      return false;
    }
  }
  return true;
}

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/turnstiled-state-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

}  // namespace

TEST_CASE("a snapshot decodes to exactly the state it was made from") {
  const auto s = Sample();
  auto decoded = DecodeSnapshot(EncodeSnapshot(s));
  REQUIRE_MESSAGE(decoded.ok(), decoded.status().ToString());
  CHECK(Same(*decoded, s));
  window::PartitionState empty;
  auto e = DecodeSnapshot(EncodeSnapshot(empty));
  REQUIRE(e.ok());
  CHECK(Same(*e, empty));
}

TEST_CASE("every truncation and every flipped bit of a snapshot is refused, never read") {
  const std::string bytes = EncodeSnapshot(Sample());
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto d = DecodeSnapshot(std::string_view(bytes).substr(0, n));
    REQUIRE_FALSE(d.ok());
  }
  CHECK(DecodeSnapshot(bytes.substr(0, 10)).status().message().find("truncated") !=
        std::string::npos);
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string flipped = bytes;
      flipped[i] = static_cast<char>(flipped[i] ^ (1 << bit));
      REQUIRE_FALSE(DecodeSnapshot(flipped).ok());
    }
  }
  std::string other = bytes;
  other[4] = 9;  // a future format version
  CHECK(DecodeSnapshot(other).status().message().find("version 9") != std::string::npos);
}

TEST_CASE("CRC-32C matches the standard check value") {
  CHECK(base::Crc32c("123456789") == 0xE3069283U);
  // Lengths that take the hardware path's 8-byte steps, its byte tail, or neither.
  CHECK(base::Crc32c("") == 0);
  CHECK(base::Crc32c("a") == 0xC1D04330U);
  CHECK(base::Crc32c("123456789123456789") == 0xA86C53F4U);
  CHECK(base::Crc32c("56789123456789", base::Crc32c("1234")) == 0xA86C53F4U);
}

TEST_CASE("the local store keeps the newest and the previous snapshot, and falls back") {
  TempDir dir;
  LocalStore store(dir.path, "group");
  REQUIRE(store.Open().ok());
  auto s = Sample();
  CHECK_FALSE(store.Load(s.topic, s.partition).has_value());
  REQUIRE(store.Write(s.topic, s.partition, EncodeSnapshot(s)).ok());
  s.next_offset += 10;
  REQUIRE(store.Write(s.topic, s.partition, EncodeSnapshot(s)).ok());
  auto loaded = store.Load(s.topic, s.partition);
  REQUIRE(loaded.has_value());
  CHECK(loaded->next_offset == s.next_offset);

  // A truncated newest file: the previous one is used.
  const std::string path = store.PathFor(s.topic, s.partition);
  std::filesystem::resize_file(path, 30);
  loaded = store.Load(s.topic, s.partition);
  REQUIRE(loaded.has_value());
  CHECK(loaded->next_offset == s.next_offset - 10);

  // Both damaged: none, and no crash.
  std::filesystem::resize_file(path + ".prev", 7);
  CHECK_FALSE(store.Load(s.topic, s.partition).has_value());
}

TEST_CASE("a state.dir that cannot be written is refused at open") {
  TempDir dir;
  { std::ofstream(dir.path + "/file") << "x"; }
  LocalStore store(dir.path + "/file/state", "group");
  auto s = store.Open();
  CHECK_FALSE(s.ok());
  CHECK(s.message().find("Not a directory") != std::string::npos);
}
