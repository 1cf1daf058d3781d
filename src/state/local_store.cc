#include "state/local_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "base/input_file.h"
#include "base/log.h"
#include "state/snapshot.h"

namespace turnstiled::state {

namespace {

base::Status Errno(std::string_view op, const std::string& path, int err) {
  return base::Status::IoError("state.dir: " + std::string(op) + " " + path + ": " +
                               std::strerror(err));
}

base::Status MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0750) == 0 || errno == EEXIST) return {};
  return Errno("mkdir", path, errno);
}

base::Status MakeDirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  return ec ? Errno("mkdir", path, ec.value()) : base::Status();
}

base::Status WriteFileSynced(const std::string& path, const std::string& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) return Errno("open", path, errno);
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return Errno("write", path, err);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    return Errno("fsync", path, err);
  }
  if (::close(fd) != 0) return Errno("close", path, errno);
  return {};
}

base::Status SyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("open", dir, errno);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  return rc == 0 ? base::Status() : Errno("fsync", dir, err);
}

}  // namespace

LocalStore::LocalStore(std::string dir, std::string group)
    : root_(std::move(dir) + "/" + std::move(group)) {}

std::string LocalStore::PathFor(const std::string& topic, int32_t partition) const {
  return root_ + "/" + topic + "/" + std::to_string(partition) + ".snap";
}

base::Status LocalStore::Open() {
  base::Status s = MakeDirs(root_);
  if (!s.ok()) return s;
  const std::string probe = root_ + "/.probe-" + std::to_string(::getpid());
  s = WriteFileSynced(probe, "turnstiled");
  ::unlink(probe.c_str());
  return s;
}

base::Status LocalStore::Write(const std::string& topic, int32_t partition,
                               const std::string& bytes) {
  const std::string dir = root_ + "/" + topic;
  base::Status s = MakeDir(dir);
  if (!s.ok()) return s;
  const std::string path = PathFor(topic, partition);
  const std::string temp = dir + "/." + std::to_string(partition) + ".snap.tmp";
  s = WriteFileSynced(temp, bytes);
  if (!s.ok()) {
    ::unlink(temp.c_str());
    return s;
  }
  if (::rename(path.c_str(), (path + ".prev").c_str()) != 0 && errno != ENOENT) {
    const int err = errno;
    ::unlink(temp.c_str());
    return Errno("rename", path, err);
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(temp.c_str());
    return Errno("rename", temp, err);
  }
  return SyncDir(dir);
}

std::optional<window::PartitionState> LocalStore::Load(const std::string& topic,
                                                       int32_t partition) const {
  const std::string path = PathFor(topic, partition);
  for (const std::string& candidate : {path, path + ".prev"}) {
    auto bytes = base::ReadWholeFile(candidate);
    if (!bytes.ok()) continue;
    auto decoded = DecodeSnapshot(*bytes);
    if (decoded.ok() && decoded->topic == topic && decoded->partition == partition) {
      if (candidate != path) {
        base::Log(base::LogLevel::kWarn, "state", "using the previous snapshot",
                  {{"path", candidate}});
      }
      return std::move(decoded).value();
    }
    base::Log(base::LogLevel::kError, "state",
              "snapshot is damaged; falling back to the one before it",
              {{"path", candidate},
               {"error", decoded.ok() ? std::string("it is for another partition")
                                      : decoded.status().message()}});
  }
  return std::nullopt;
}

}  // namespace turnstiled::state
