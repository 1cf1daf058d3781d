#include "sink/file_sink.h"

#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <memory>
#include <set>
#include <tuple>

#include "base/civil_time.h"
#include "sink/partition_path.h"
#include "sink/row_format.h"
#include "sink/staged_file.h"

namespace turnstiled::sink {
namespace {

namespace fs = std::filesystem;

std::string ExtensionFor(const config::SinkConfig& config) {
  std::string ext = config.format == config::FileFormat::kCsv ? ".csv" : ".jsonl";
  if (config.compression == config::Compression::kZstd) ext += ".zst";
  return ext;
}

base::Status FsStatus(std::string_view op, const std::string& path, const std::error_code& ec) {
  return ErrnoStatus(op, path, ec.value());
}

// Creates `dir` and any missing parents below `root` with mkdir(2): one call when `dir` exists
// or only its last component is missing, which is the common case. Records the parent of each
// directory it creates: that parent's entry needs an fsync too.
base::Status MakeDirs(const std::string& root, const std::string& dir,
                      std::vector<std::string>* dirs, mode_t mode) {
  if (dir.size() <= root.size()) return {};
  const std::string parent = dir.substr(0, dir.find_last_of('/'));
  if (::mkdir(dir.c_str(), mode) == 0) {
    dirs->push_back(parent);
    return {};
  }
  if (errno == EEXIST) return {};
  if (errno != ENOENT || parent.size() >= dir.size() || parent.size() < root.size()) {
    return ErrnoStatus("mkdir", dir, errno);
  }
  base::Status s = MakeDirs(root, parent, dirs, mode);
  if (!s.ok()) return s;
  if (::mkdir(dir.c_str(), mode) == 0) {
    dirs->push_back(parent);
  } else if (errno != EEXIST) {
    return ErrnoStatus("mkdir", dir, errno);
  }
  return {};
}

bool PartitionsByStation(const config::SinkConfig& c) {
  return std::find(c.partition_by.begin(), c.partition_by.end(), "station") != c.partition_by.end();
}

}  // namespace

base::Status FileSink::StaleParts::Remove(const std::string& extension) const {
  if (unsuffixed) {
    const std::string path = stem + extension;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoStatus("unlink", path, errno);
  }
  for (size_t n = first_part;; ++n) {
    const std::string path = stem + '-' + std::to_string(n) + extension;
    if (::unlink(path.c_str()) == 0) continue;
    if (errno == ENOENT) return {};
    return ErrnoStatus("unlink", path, errno);
  }
}

struct FileSink::Staged {
  std::unique_ptr<StagedFile> file;
  std::string final_path;
};

FileSink::FileSink(config::SinkConfig config)
    : config_(std::move(config)),
      extension_(ExtensionFor(config_)),
      cctx_(config_.compression == config::Compression::kZstd ? ZSTD_createCCtx() : nullptr),
      by_station_(PartitionsByStation(config_)) {}

FileSink::~FileSink() { ZSTD_freeCCtx(cctx_); }

base::Status FileSink::Open() {
  if (config_.path.empty()) {
    return base::Status::InvalidArgument("sink '" + config_.name + "': file sink needs a path");
  }
  std::error_code ec;
  fs::create_directories(config_.path, ec);
  if (ec) return FsStatus("mkdir", config_.path, ec);
  // Temp files of a process that died mid-flush: never visible to readers, but they take space.
  // Those of a live process (another instance writing the same lake) are left alone.
  for (auto it = fs::recursive_directory_iterator(config_.path, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it.depth() >= 3) it.disable_recursion_pending();
    if (it->is_regular_file(ec) && IsAbandonedTempName(it->path().filename().string())) {
      fs::remove(it->path(), ec);
      ec.clear();
    }
  }
  return {};
}

base::Status FileSink::Write(std::span<const window::WindowRow> rows) {
  buffer_.insert(buffer_.end(), rows.begin(), rows.end());
  return {};
}

// Orders rows so that each file's rows are adjacent: by station first when folders are per
// station, then window, then owning input partition, then station.
bool FileSink::FileOrder(const window::WindowRow& a, const window::WindowRow& b) const {
  if (by_station_ && a.station != b.station) return a.station < b.station;
  if (a.window_start_ms != b.window_start_ms) return a.window_start_ms < b.window_start_ms;
  if (a.window_end_ms != b.window_end_ms) return a.window_end_ms < b.window_end_ms;
  if (a.source != b.source) return a.source < b.source;
  return a.station < b.station;
}

bool FileSink::SameFile(const window::WindowRow& a, const window::WindowRow& b) const {
  return a.window_start_ms == b.window_start_ms && a.window_end_ms == b.window_end_ms &&
         a.source == b.source && (!by_station_ || a.station == b.station);
}

base::Status FileSink::Flush() {
  if (buffer_.empty()) return {};
  std::vector<size_t> order(buffer_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return FileOrder(buffer_[a], buffer_[b]); });
  // Keep the last row written of each (station, window) of a file: emit: update sends a window
  // again, and the newest row replaces the older ones.
  std::vector<size_t> rows;
  rows.reserve(order.size());
  for (size_t i = 0; i < order.size(); ++i) {
    if (i + 1 < order.size()) {
      const window::WindowRow& a = buffer_[order[i]];
      const window::WindowRow& b = buffer_[order[i + 1]];
      if (SameFile(a, b) && a.station == b.station) continue;
    }
    rows.push_back(order[i]);
  }

  // One group, so one file (or more when it rolls), per (folder, window, input partition).
  std::vector<std::pair<size_t, size_t>> groups;
  for (size_t begin = 0; begin < rows.size();) {
    size_t end = begin + 1;
    while (end < rows.size() && SameFile(buffer_[rows[begin]], buffer_[rows[end]])) ++end;
    groups.emplace_back(begin, end);
    begin = end;
  }
  // Many files: one syncfs before the renames and one after, instead of an fsync per file and
  // per directory.
  sync_each_ = groups.size() < kSyncEachBelowFiles;

  std::vector<Staged> staged;
  staged_bytes_ = 0;
  std::vector<std::string> dirs;
  std::vector<StaleParts> stale;
  for (const auto& [begin, end] : groups) {
    base::Status s = StageGroup(rows, begin, end, &staged, &dirs, &stale);
    if (!s.ok()) return s;  // `staged` removes its temp files
  }
  if (!sync_each_) {
    base::Status s = SyncFilesystem(config_.path);
    if (!s.ok()) return s;
  }
  for (Staged& f : staged) {
    base::Status s = f.file->Publish(f.final_path);
    if (!s.ok()) return s;
  }
  for (const StaleParts& st : stale) {
    base::Status s = st.Remove(extension_);
    if (!s.ok()) return s;
  }
  if (sync_each_) {
    std::sort(dirs.begin(), dirs.end());
    dirs.erase(std::unique(dirs.begin(), dirs.end()), dirs.end());
    for (const std::string& dir : dirs) {
      base::Status s = SyncDirectory(dir);
      if (!s.ok()) return s;
    }
  } else {
    base::Status s = SyncFilesystem(config_.path);
    if (!s.ok()) return s;
  }
  files_written_ += staged.size();
  bytes_written_ += staged_bytes_;
  buffer_.clear();
  return {};
}

base::Status FileSink::StageGroup(const std::vector<size_t>& order, size_t begin, size_t end,
                                  std::vector<Staged>* staged, std::vector<std::string>* dirs,
                                  std::vector<StaleParts>* stale) {
  const window::WindowRow& first = buffer_[order[begin]];
  const std::string rel = PartitionDir(config_.partition_by, first.station, first.window_start_ms);
  const std::string dir = rel.empty() ? config_.path : config_.path + '/' + rel;
  base::Status s = MakeDirs(config_.path, dir, dirs, static_cast<mode_t>(config_.dir_mode));
  if (!s.ok()) return s;
  dirs->push_back(dir);

  // The name is a function of the data only: the window, and the input partition that owns
  // its rows. A replay, a restart or another instance writes the same name.
  std::string base_name = "part-";
  AppendCompactUtc(first.window_start_ms, &base_name);
  base_name += '-';
  AppendCompactUtc(first.window_end_ms, &base_name);
  if (!first.source.empty()) {
    base_name += '-';
    base_name += EscapePartitionValue(first.source);
  }

  const bool csv = config_.format == config::FileFormat::kCsv;
  const size_t group_start = staged->size();
  std::unique_ptr<StagedFile> file;
  size_t file_bytes = 0;
  size_t file_rows = 0;
  auto finish = [&]() -> base::Status {
    base::Status fs_status = file->Finish(sync_each_);
    if (!fs_status.ok()) return fs_status;
    staged->push_back({std::move(file), ""});
    return {};
  };
  for (size_t i = begin; i < end; ++i) {
    scratch_.clear();
    const window::WindowRow& row = buffer_[order[i]];
    csv ? AppendCsvRow(row, &scratch_) : AppendJsonRow(row, &scratch_);
    const bool full = config_.roll_bytes > 0 && file_rows > 0 &&
                      file_bytes + scratch_.size() > static_cast<size_t>(config_.roll_bytes);
    if (file && full) {
      s = finish();
      if (!s.ok()) return s;
    }
    if (!file) {
      auto created = StagedFile::Create(dir, cctx_, config_.file_mode);
      if (!created.ok()) return created.status();
      file = std::move(created).value();
      file_bytes = 0;
      file_rows = 0;
      if (csv) {
        std::string header;
        AppendCsvHeader(&header);
        file_bytes += header.size();
        s = file->Append(header);
        if (!s.ok()) return s;
      }
    }
    file_bytes += scratch_.size();
    staged_bytes_ += scratch_.size();
    ++file_rows;
    s = file->Append(scratch_);
    if (!s.ok()) return s;
  }
  s = finish();
  if (!s.ok()) return s;

  const size_t files = staged->size() - group_start;
  const std::string stem = dir + '/' + base_name;
  for (size_t n = 0; n < files; ++n) {
    std::string& path = (*staged)[group_start + n].final_path;
    path = files > 1 ? stem + '-' + std::to_string(n) + extension_ : stem + extension_;
  }
  // A group written before in more (or fewer) parts must not leave its old parts beside the
  // new ones: a reader would count their rows twice.
  stale->push_back({stem, files > 1, files > 1 ? files : 0});
  return {};
}

base::Status FileSink::Close() { return Flush(); }

}  // namespace turnstiled::sink
