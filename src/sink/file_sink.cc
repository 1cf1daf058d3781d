#include "sink/file_sink.h"

#include <sys/stat.h>
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
                      std::vector<std::string>* dirs) {
  const std::string parent = dir.substr(0, dir.find_last_of('/'));
  if (::mkdir(dir.c_str(), 0755) == 0) {
    dirs->push_back(parent);
    return {};
  }
  if (errno == EEXIST) return {};
  if (errno != ENOENT || parent.size() >= dir.size() || parent.size() < root.size()) {
    return ErrnoStatus("mkdir", dir, errno);
  }
  base::Status s = MakeDirs(root, parent, dirs);
  if (!s.ok()) return s;
  if (::mkdir(dir.c_str(), 0755) == 0) {
    dirs->push_back(parent);
  } else if (errno != EEXIST) {
    return ErrnoStatus("mkdir", dir, errno);
  }
  return {};
}

}  // namespace

struct FileSink::Staged {
  std::unique_ptr<StagedFile> file;
  std::string final_path;
};

FileSink::FileSink(config::SinkConfig config)
    : config_(std::move(config)),
      extension_(ExtensionFor(config_)),
      cctx_(config_.compression == config::Compression::kZstd ? ZSTD_createCCtx() : nullptr) {}

FileSink::~FileSink() { ZSTD_freeCCtx(cctx_); }

base::Status FileSink::Open() {
  if (config_.path.empty()) {
    return base::Status::InvalidArgument("sink '" + config_.name + "': file sink needs a path");
  }
  std::error_code ec;
  fs::create_directories(config_.path, ec);
  if (ec) return FsStatus("mkdir", config_.path, ec);
  // Temp files of a process that died mid-flush: never visible to readers, but they take space.
  for (auto it = fs::recursive_directory_iterator(config_.path, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it.depth() >= 2) it.disable_recursion_pending();
    if (it->is_regular_file(ec) && IsStagedTempName(it->path().filename().string())) {
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

base::Status FileSink::Flush() {
  if (buffer_.empty()) return {};
  std::vector<size_t> order(buffer_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  auto key = [this](size_t i) {
    const window::WindowRow& r = buffer_[i];
    return std::tie(r.station, r.window_start_ms, r.window_end_ms);
  };
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return key(a) < key(b); });
  // Keep the last row written of each (station, window_start, window_end).
  std::vector<size_t> rows;
  rows.reserve(order.size());
  for (size_t i = 0; i < order.size(); ++i) {
    if (i + 1 < order.size() && key(order[i]) == key(order[i + 1])) continue;
    rows.push_back(order[i]);
  }

  // One group, so one file (or more when it rolls), per (station, UTC date).
  std::vector<std::pair<size_t, size_t>> groups;
  for (size_t begin = 0; begin < rows.size();) {
    const window::WindowRow& first = buffer_[rows[begin]];
    const int64_t day = base::FloorDiv(first.window_start_ms, 86400000);
    size_t end = begin + 1;
    while (end < rows.size() && buffer_[rows[end]].station == first.station &&
           base::FloorDiv(buffer_[rows[end]].window_start_ms, 86400000) == day) {
      ++end;
    }
    groups.emplace_back(begin, end);
    begin = end;
  }
  // Many files: one syncfs before the renames and one after, instead of an fsync per file and
  // per directory (thousands per flush when a whole week closes at once).
  sync_each_ = groups.size() < kSyncEachBelowFiles;

  std::vector<Staged> staged;
  std::vector<std::string> dirs;
  for (const auto& [begin, end] : groups) {
    base::Status s = StageGroup(rows, begin, end, &staged, &dirs);
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
  buffer_.clear();
  return {};
}

base::Status FileSink::StageGroup(const std::vector<size_t>& order, size_t begin, size_t end,
                                  std::vector<Staged>* staged, std::vector<std::string>* dirs) {
  const window::WindowRow& first = buffer_[order[begin]];
  const std::string dir =
      (fs::path(config_.path) / PartitionDir(first.station, first.window_start_ms)).string();
  base::Status s = MakeDirs(config_.path, dir, dirs);
  if (!s.ok()) return s;
  dirs->push_back(dir);

  std::string base_name = "part-";
  AppendCompactUtc(first.window_start_ms, &base_name);
  base_name += '-';
  int64_t max_end = first.window_end_ms;
  for (size_t i = begin; i < end; ++i) max_end = std::max(max_end, buffer_[order[i]].window_end_ms);
  AppendCompactUtc(max_end, &base_name);

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
      auto created = StagedFile::Create(dir, cctx_);
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
    ++file_rows;
    s = file->Append(scratch_);
    if (!s.ok()) return s;
  }
  s = finish();
  if (!s.ok()) return s;

  const size_t files = staged->size() - group_start;
  for (size_t n = 0; n < files; ++n) {
    std::string& path = (*staged)[group_start + n].final_path;
    path = dir + '/' + base_name;
    if (files > 1) path += '-' + std::to_string(n);
    path += extension_;
  }
  return {};
}

base::Status FileSink::Close() { return Flush(); }

}  // namespace turnstiled::sink
