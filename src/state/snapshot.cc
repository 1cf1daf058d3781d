#include "state/snapshot.h"

#include <zstd.h>

#include <array>
#include <cstring>

#include "base/crc32c.h"

namespace turnstiled::state {

namespace {

constexpr char kMagic[4] = {'T', 'S', 'N', 'P'};
constexpr size_t kHeaderBytes = 4 + 4 + 4 + 8;
// A body that claims more than this is damaged, not large: 1 M open windows take ~60 MB.
constexpr uint64_t kMaxBodyBytes = 4ULL << 30;

template <typename T>
void Put(std::string* out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out->append(b, sizeof(T));
}

void PutString(std::string* out, std::string_view s) {
  Put<uint32_t>(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}

// Reads fields off the body, refusing to read past its end.
class Reader {
 public:
  explicit Reader(std::string_view b) : b_(b) {}
  template <typename T>
  bool Get(T* v) {
    if (b_.size() - pos_ < sizeof(T)) return false;
    std::memcpy(v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool GetString(std::string* s) {
    uint32_t n = 0;
    if (!Get(&n) || b_.size() - pos_ < n) return false;
    s->assign(b_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  size_t left() const { return b_.size() - pos_; }

 private:
  std::string_view b_;
  size_t pos_ = 0;
};

}  // namespace

std::string EncodeSnapshot(const window::PartitionState& s) {
  std::string body;
  body.reserve(64 + s.devices.size() * 48 + s.windows.size() * 64);
  PutString(&body, s.topic);
  Put<int32_t>(&body, s.partition);
  Put<int64_t>(&body, s.next_offset);
  Put<int64_t>(&body, s.high_ms);
  Put<int64_t>(&body, s.closed_through);
  Put<uint64_t>(&body, s.devices.size());
  for (const auto& d : s.devices) {
    PutString(&body, d.station);
    PutString(&body, d.device);
    Put<int64_t>(&body, d.t0);
    Put<int64_t>(&body, d.e0);
    Put<int64_t>(&body, d.x0);
  }
  Put<uint64_t>(&body, s.windows.size());
  for (const auto& w : s.windows) {
    PutString(&body, w.station);
    Put<int64_t>(&body, w.start_ms);
    Put<int64_t>(&body, w.entries);
    Put<int64_t>(&body, w.exits);
    Put<int64_t>(&body, w.events);
    Put<int64_t>(&body, w.first_ms);
    Put<int64_t>(&body, w.last_ms);
  }
  std::string packed(ZSTD_compressBound(body.size()), '\0');
  const size_t n = ZSTD_compress(packed.data(), packed.size(), body.data(), body.size(), 1);
  packed.resize(ZSTD_isError(n) ? 0 : n);

  std::string out;
  out.reserve(kHeaderBytes + packed.size());
  out.append(kMagic, 4);
  Put<uint32_t>(&out, kSnapshotVersion);
  std::string rest;
  Put<uint64_t>(&rest, packed.size());
  rest += packed;
  Put<uint32_t>(&out, base::Crc32c(rest));
  out += rest;
  return out;
}

base::Result<window::PartitionState> DecodeSnapshot(std::string_view bytes) {
  using base::Status;
  if (bytes.size() < kHeaderBytes) {
    return Status::InvalidArgument("truncated: " + std::to_string(bytes.size()) +
                                   " bytes, shorter than the header");
  }
  if (std::memcmp(bytes.data(), kMagic, 4) != 0) {
    return Status::InvalidArgument("not a turnstiled snapshot (bad magic)");
  }
  uint32_t version = 0;
  uint32_t crc = 0;
  uint64_t length = 0;
  std::memcpy(&version, bytes.data() + 4, 4);
  std::memcpy(&crc, bytes.data() + 8, 4);
  std::memcpy(&length, bytes.data() + 12, 8);
  if (version != kSnapshotVersion) {
    return Status::InvalidArgument("snapshot format version " + std::to_string(version) +
                                   ", this build reads version " +
                                   std::to_string(kSnapshotVersion));
  }
  if (length != bytes.size() - kHeaderBytes) {
    return Status::InvalidArgument("truncated: the body should have " + std::to_string(length) +
                                   " bytes, the file has " +
                                   std::to_string(bytes.size() - kHeaderBytes));
  }
  if (base::Crc32c(bytes.substr(12)) != crc) return Status::InvalidArgument("checksum mismatch");
  const std::string_view packed = bytes.substr(kHeaderBytes);
  const unsigned long long size = ZSTD_getFrameContentSize(packed.data(), packed.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > kMaxBodyBytes) {
    return Status::InvalidArgument("damaged body (zstd frame)");
  }
  std::string body(size, '\0');
  const size_t n = ZSTD_decompress(body.data(), body.size(), packed.data(), packed.size());
  if (ZSTD_isError(n) || n != size) return Status::InvalidArgument("damaged body (zstd frame)");

  Reader r(body);
  window::PartitionState s;
  uint64_t count = 0;
  const auto bad = [] { return Status::InvalidArgument("damaged body (fields)"); };
  if (!r.GetString(&s.topic) || !r.Get(&s.partition) || !r.Get(&s.next_offset) ||
      !r.Get(&s.high_ms) || !r.Get(&s.closed_through) || !r.Get(&count)) {
    return bad();
  }
  if (count > r.left() / 32) return bad();  // each device takes at least 32 bytes
  s.devices.resize(count);
  for (auto& d : s.devices) {
    if (!r.GetString(&d.station) || !r.GetString(&d.device) || !r.Get(&d.t0) || !r.Get(&d.e0) ||
        !r.Get(&d.x0)) {
      return bad();
    }
  }
  if (!r.Get(&count) || count > r.left() / 52) return bad();  // 4 + 6 * 8 bytes at least
  s.windows.resize(count);
  for (auto& w : s.windows) {
    if (!r.GetString(&w.station) || !r.Get(&w.start_ms) || !r.Get(&w.entries) || !r.Get(&w.exits) ||
        !r.Get(&w.events) || !r.Get(&w.first_ms) || !r.Get(&w.last_ms)) {
      return bad();
    }
  }
  if (r.left() != 0) return bad();
  return s;
}

}  // namespace turnstiled::state
