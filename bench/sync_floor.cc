// turnstiled_bench_sync_floor: what one synced write costs on a filesystem, alone: the floor
// under the file sink's emit delay, for bench/emit_delay.sh.
//
//   turnstiled_bench_sync_floor DIR [SAMPLES] [GAP_MS]
//
// In DIR it makes an 8 MiB file of zeros (fsync'd), then SAMPLES times (default 300), GAP_MS
// apart (default 20), overwrites the next 1,200 bytes in place and calls fdatasync: what the
// file sink does once per flush (its journal record, src/sink/lake_journal.h). No metadata
// changes, so each sample is the data write and the device's cache flush. Prints one line:
//   sync_floor: samples=N p50_ms=X p99_ms=X max_ms=X
// and removes its file. Exits 1 when DIR cannot be written.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr size_t kFileBytes = 8 << 20;
constexpr size_t kRecordBytes = 1200;

bool WriteAllAt(int fd, const char* p, size_t n, off_t at) {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, p, n, at);
    if (w < 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
    at += w;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DIR [SAMPLES] [GAP_MS]\n", argv[0]);
    return 2;
  }
  const size_t samples = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 300;
  const long gap_ms = argc > 3 ? std::strtol(argv[3], nullptr, 10) : 20;
  if (samples == 0 || samples * kRecordBytes > kFileBytes) {
    std::fprintf(stderr, "%s: SAMPLES must be 1 to %zu\n", argv[0], kFileBytes / kRecordBytes);
    return 2;
  }
  const std::string path = std::string(argv[1]) + "/.sync-floor";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::perror(path.c_str());
    return 1;
  }
  const std::string zeros(kFileBytes, '\0');
  if (!WriteAllAt(fd, zeros.data(), zeros.size(), 0) || ::fsync(fd) != 0) {
    std::perror(path.c_str());
    ::close(fd);
    ::unlink(path.c_str());
    return 1;
  }
  const std::string record(kRecordBytes, 'r');
  std::vector<double> ms;
  ms.reserve(samples);
  for (size_t i = 0; i < samples; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(gap_ms));
    const auto start = std::chrono::steady_clock::now();
    if (!WriteAllAt(fd, record.data(), record.size(), static_cast<off_t>(i * kRecordBytes)) ||
        ::fdatasync(fd) != 0) {
      std::perror(path.c_str());
      ::close(fd);
      ::unlink(path.c_str());
      return 1;
    }
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                     .count());
  }
  ::close(fd);
  ::unlink(path.c_str());
  std::sort(ms.begin(), ms.end());
  const auto at = [&](double q) {
    return ms[std::min(ms.size() - 1, static_cast<size_t>(q * static_cast<double>(ms.size())))];
  };
  std::printf("sync_floor: samples=%zu p50_ms=%.3f p99_ms=%.3f max_ms=%.3f\n", ms.size(), at(0.5),
              at(0.99), ms.back());
  return 0;
}
