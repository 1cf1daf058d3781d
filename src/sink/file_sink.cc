#include "sink/file_sink.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "base/civil_time.h"
#include "base/log.h"
#include "base/thread_name.h"
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
// or only its last component is missing, which is the common case.
base::Status MakeDirs(const std::string& root, const std::string& dir, mode_t mode) {
  if (dir.size() <= root.size()) return {};
  if (::mkdir(dir.c_str(), mode) == 0 || errno == EEXIST) return {};
  const std::string parent = dir.substr(0, dir.find_last_of('/'));
  if (errno != ENOENT || parent.size() >= dir.size() || parent.size() < root.size()) {
    return ErrnoStatus("mkdir", dir, errno);
  }
  base::Status s = MakeDirs(root, parent, mode);
  if (!s.ok()) return s;
  if (::mkdir(dir.c_str(), mode) != 0 && errno != EEXIST) return ErrnoStatus("mkdir", dir, errno);
  return {};
}

// The start of this host's journal names: ".turnstiled-journal-<host>-". Each process adds its
// own instance, so several (on one host or on many) can share a lake folder, and a restart
// finds the journals of this host's processes that are gone.
std::string JournalPrefix() {
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  std::string name = ".turnstiled-journal-";
  for (const char* p = host; *p != '\0'; ++p) {
    const char c = *p;
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '-' || c == '.' || c == '_';
    name += plain ? c : '_';
  }
  return name + '-';
}

// The whole raw content of `path`; nullopt when it cannot be read (missing, say).
std::optional<std::string> ReadRaw(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string out;
  char buf[64 * 1024];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      if (n < 0) return std::nullopt;
      return out;
    }
    out.append(buf, static_cast<size_t>(n));
  }
}

// Bytes free to an unprivileged writer on the filesystem holding `path`; 0 when unknown.
uint64_t FreeBytes(const std::string& path) {
  struct statvfs st {};
  if (::statvfs(path.c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

// A journal path that stays inside the sink's folder: relative, without a ".." step.
bool SafeRelative(std::string_view rel) {
  if (rel.empty() || rel.front() == '/') return false;
  for (size_t begin = 0; begin <= rel.size();) {
    size_t end = rel.find('/', begin);
    if (end == std::string_view::npos) end = rel.size();
    const std::string_view step = rel.substr(begin, end - begin);
    if (step.empty() || step == "." || step == "..") return false;
    begin = end + 1;
  }
  return true;
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
  std::string content;  // as written, for the journal
};

FileSink::FileSink(config::SinkConfig config, Options options)
    : config_(std::move(config)),
      extension_(ExtensionFor(config_)),
      by_station_(PartitionsByStation(config_)),
      boot_id_(std::move(options.boot_id)),
      background_sync_(options.background_sync),
      instance_(std::move(options.instance)),
      spare_target_(options.spare_files) {
  if (config_.compression == config::Compression::kZstd) {
    for (Encoder& e : encoders_) e.cctx = ZSTD_createCCtx();
  }
}

FileSink::~FileSink() {
  StopSyncer();
  for (Encoder& e : encoders_) ZSTD_freeCCtx(e.cctx);
}

base::Status FileSink::Open() {
  if (config_.path.empty()) {
    return base::Status::InvalidArgument("sink '" + config_.name + "': file sink needs a path");
  }
  // The writer pool calls Open() again after a failed one: start from nothing, so that no
  // journal of the failed attempt still holds its lock.
  StopSyncer();
  spares_.reset();
  journals_[0].reset();
  journals_[1].reset();
  adopted_.clear();
  recovery_ = {};
  sequence_ = 0;
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

  // Journals of this host's processes that are gone (nobody holds their lock): adopted, their
  // records recovered with ours, then removed. Those of live processes are left alone.
  const std::string prefix = JournalPrefix();
  const std::string own = prefix + instance_;
  std::map<std::string, std::vector<JournalRecord>> by_process;
  for (auto it = fs::directory_iterator(config_.path, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.starts_with(prefix) || name.size() < 2 || name[name.size() - 2] != '.' ||
        (name.back() != '0' && name.back() != '1')) {
      continue;
    }
    const std::string process = name.substr(0, name.size() - 2);
    if (process == own) continue;
    std::vector<JournalRecord> some;
    bool cut = false;
    auto journal = LakeJournal::Open(it->path().string(), &some, &cut, /*create=*/false);
    if (!journal.ok()) continue;  // a live process's, or gone meanwhile
    adopted_.push_back(std::move(journal).value());
    if (cut) ++recovery_.cut_records;
    auto& list = by_process[process];
    for (JournalRecord& r : some) list.push_back(std::move(r));
  }
  // Two journal files of our own: flushes append to one while the other, once the lake files of
  // its records are synced, is emptied in the background.
  for (int i = 0; i < 2; ++i) {
    std::vector<JournalRecord> some;
    bool cut = false;
    auto journal =
        LakeJournal::Open(config_.path + '/' + own + '.' + std::to_string(i), &some, &cut);
    if (!journal.ok()) return journal.status();
    journals_[i] = std::move(journal).value();
    if (cut) ++recovery_.cut_records;
    auto& list = by_process[own];
    for (JournalRecord& r : some) list.push_back(std::move(r));
  }
  // One process's records in the order it wrote them; processes by when they last wrote.
  std::vector<std::vector<JournalRecord>*> order;
  for (auto& [process, list] : by_process) {
    std::sort(list.begin(), list.end(), [](const JournalRecord& a, const JournalRecord& b) {
      return a.sequence < b.sequence;
    });
    if (!list.empty()) order.push_back(&list);
  }
  std::stable_sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
    return a->back().written_ms < b->back().written_ms;
  });
  std::vector<JournalRecord> records;
  for (auto* list : order) {
    for (JournalRecord& r : *list) {
      sequence_ = std::max(sequence_, r.sequence + 1);
      records.push_back(std::move(r));
    }
  }
  recovery_.records = records.size();
  active_ = 0;
  if (!records.empty() || recovery_.cut_records > 0) {
    // A record of this boot: the kernel still holds the files it wrote, as they were published.
    // Of another boot: the machine stopped, and those files may be missing, empty or old.
    const bool restarted = std::any_of(records.begin(), records.end(), [&](const JournalRecord& r) {
      return !SameBoot(r.boot_id, boot_id_);
    });
    if (restarted) {
      base::Status s = Replay(records);
      if (!s.ok()) return s;
    }
    base::Status s = SyncAndEmptyJournals();
    if (!s.ok()) return s;
    base::Log(base::LogLevel::kInfo, "sink", "file sink journal recovered",
              {{"sink", config_.name},
               {"journals_adopted", std::to_string(adopted_.size())},
               {"records", std::to_string(recovery_.records)},
               {"machine_restarted", restarted ? "true" : "false"},
               {"files_rewritten", std::to_string(recovery_.rewritten)},
               {"cut_records", std::to_string(recovery_.cut_records)}});
  }
  for (auto& journal : adopted_) {
    base::Status s = journal->Remove();
    if (!s.ok()) return s;
  }
  adopted_.clear();
  struct stat root {};
  if (::stat(config_.path.c_str(), &root) != 0) return ErrnoStatus("stat", config_.path, errno);
  root_dev_ = root.st_dev;
  if (spare_target_ > 0) {
    spares_ = std::make_unique<SpareFiles>(config_.path, config_.file_mode, spare_target_,
                                           std::string("spare-").append(config_.name));
    spares_->Start();
  }
  if (!background_sync_) return {};
  // The syncer's first task: make room in the other journal.
  {
    std::lock_guard<std::mutex> lock(sync_mu_);
    sync_stop_ = false;
    sync_pending_ = 1;
    sync_fill_ = kJournalMinFill;
  }
  syncer_ = std::thread([this] { SyncLoop(); });
  return {};
}

void FileSink::SyncLoop() {
  base::NameThisThread(std::string("sync-").append(config_.name));
  std::unique_lock<std::mutex> lock(sync_mu_);
  for (;;) {
    sync_cv_.wait(lock, [&] { return sync_stop_ || sync_pending_ >= 0; });
    if (sync_stop_) return;
    LakeJournal& journal = *journals_[sync_pending_];
    const uint64_t fill = sync_fill_;
    lock.unlock();
    // Every lake file of the journal's records was published before it was handed over: one
    // sync of the filesystem makes them all durable, and the records are needed no more.
    base::Status s = journal.size() > 0 ? SyncFilesystem(config_.path) : base::Status();
    if (s.ok()) s = journal.Reset();
    // Zeros ahead, so that the next records overwrite allocated blocks: their fdatasync then
    // writes the data alone, without a metadata commit. Only a speed-up: not on a disk that is
    // nearly full, where the space is the lake's, and a failure is not retried.
    if (s.ok() && journal.allocated() < fill && FreeBytes(config_.path) > 4 * fill) {
      base::Status filled = journal.Fill(fill);
      if (!filled.ok()) {
        base::Log(base::LogLevel::kWarn, "sink", "file sink journal: no room written ahead",
                  {{"sink", config_.name}, {"error", filled.ToString()}});
      }
    }
    lock.lock();
    if (s.ok()) {
      sync_pending_ = -1;
      continue;
    }
    base::Log(base::LogLevel::kWarn, "sink", "file sink sync failed; the journal keeps the files",
              {{"sink", config_.name}, {"error", s.ToString()}});
    sync_cv_.wait_for(lock, std::chrono::seconds(1), [&] { return sync_stop_; });
  }
}

void FileSink::StopSyncer() {
  {
    std::lock_guard<std::mutex> lock(sync_mu_);
    sync_stop_ = true;
  }
  sync_cv_.notify_all();
  if (syncer_.joinable()) syncer_.join();
}

base::Status FileSink::Replay(const std::vector<JournalRecord>& records) {
  // Only each file's last content counts, and none for a file that a later write of its group
  // removed as a stale part. Stale parts are removed in order between them.
  std::unordered_map<std::string, const JournalEntry*> last;
  for (const JournalRecord& r : records) {
    for (const JournalEntry& e : r.entries) {
      if (e.kind == JournalEntry::Kind::kFile) {
        last[e.path] = &e;
        continue;
      }
      if (e.unsuffixed) last.erase(e.path + e.extension);
      for (uint64_t n = e.first_part;
           last.erase(e.path + '-' + std::to_string(n) + e.extension) > 0; ++n) {
      }
    }
  }
  for (const JournalRecord& r : records) {
    for (const JournalEntry& e : r.entries) {
      if (!SafeRelative(e.path)) {
        return base::Status::IoError("journal " + journals_[0]->path() +
                                     ": a path leaves the sink's folder: " + e.path);
      }
      const std::string full = config_.path + '/' + e.path;
      if (e.kind == JournalEntry::Kind::kStale) {
        base::Status s = StaleParts{full, e.unsuffixed, e.first_part}.Remove(e.extension);
        if (!s.ok()) return s;
        continue;
      }
      if (const auto it = last.find(e.path); it == last.end() || it->second != &e) continue;
      const std::optional<std::string> now = ReadRaw(full);
      if (now && *now == e.content) continue;
      const std::string dir = full.substr(0, full.find_last_of('/'));
      base::Status s = MakeDirs(config_.path, dir, static_cast<mode_t>(config_.dir_mode));
      if (!s.ok()) return s;
      auto created = StagedFile::Create(dir, nullptr, config_.file_mode);
      if (!created.ok()) return created.status();
      std::unique_ptr<StagedFile> file = std::move(created).value();
      s = file->Append(e.content);
      if (s.ok()) s = file->Finish(/*sync=*/false);
      if (s.ok()) s = file->Publish(full);
      if (!s.ok()) return s;
      ++recovery_.rewritten;
    }
  }
  return {};
}

base::Status FileSink::SyncAndEmptyJournals() {
  bool adopted_records = false;
  for (const auto& j : adopted_) adopted_records = adopted_records || j->size() > 0;
  if (adopted_records || journals_[0]->size() + journals_[1]->size() > 0) {
    base::Status s = SyncFilesystem(config_.path);
    if (!s.ok()) return s;
  }
  for (auto& j : journals_) {
    base::Status s = j->Reset();
    if (!s.ok()) return s;
  }
  return {};
}

uint64_t FileSink::JournalBytes() const {
  uint64_t n = 0;
  for (const auto& j : journals_) n += j ? j->size() : 0;
  return n;
}

std::string FileSink::Relative(const std::string& path) const {
  return path.substr(std::min(path.size(), config_.path.size() + 1));
}

base::Status FileSink::Write(std::span<const window::WindowRow> rows) {
  return WriteBatch(
      std::make_shared<const std::vector<window::WindowRow>>(rows.begin(), rows.end()));
}

base::Status FileSink::WriteBatch(const RowBatchPtr& rows) {
  if (rows->empty()) return {};
  batches_.push_back(rows);
  const size_t need = buffer_.size() + rows->size();
  if (need > buffer_.capacity()) buffer_.reserve(std::max(need, 2 * buffer_.capacity()));
  for (const window::WindowRow& row : *rows) buffer_.push_back(&row);
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

void FileSink::GroupForFiles(std::vector<size_t>* order,
                             std::vector<std::pair<size_t, size_t>>* groups) const {
  order->resize(buffer_.size());
  groups->clear();
  if (by_station_) {
    // A file per (station, window, partition): as many groups as rows, nearly.
    for (size_t i = 0; i < order->size(); ++i) (*order)[i] = i;
    std::stable_sort(order->begin(), order->end(),
                     [&](size_t a, size_t b) { return FileOrder(*buffer_[a], *buffer_[b]); });
    for (size_t begin = 0; begin < order->size();) {
      size_t end = begin + 1;
      while (end < order->size() && SameFile(*buffer_[(*order)[begin]], *buffer_[(*order)[end]])) {
        ++end;
      }
      groups->emplace_back(begin, end);
      begin = end;
    }
    return;
  }
  // A file per (window, partition): a few hundred groups for any number of rows. Each row gets
  // its group's rank in FileOrder (rows come in runs of one window, so the ordered map is looked
  // up once per run), then a counting sort places them, in arrival order within a group.
  using GroupKey = std::tuple<int64_t, int64_t, std::string_view>;
  auto key_of = [](const window::WindowRow& r) {
    return GroupKey{r.window_start_ms, r.window_end_ms, r.source};
  };
  std::map<GroupKey, uint32_t> ranks;
  for (size_t i = 0; i < buffer_.size(); ++i) {
    if (i == 0 || !SameFile(*buffer_[i - 1], *buffer_[i])) ranks.emplace(key_of(*buffer_[i]), 0);
  }
  uint32_t rank = 0;
  for (auto& [key, r] : ranks) r = rank++;
  std::vector<uint32_t> group_of(buffer_.size());
  std::vector<size_t> starts(ranks.size() + 1, 0);
  uint32_t group = 0;
  for (size_t i = 0; i < buffer_.size(); ++i) {
    if (i == 0 || !SameFile(*buffer_[i - 1], *buffer_[i])) group = ranks.at(key_of(*buffer_[i]));
    group_of[i] = group;
    ++starts[group + 1];
  }
  for (size_t g = 1; g < starts.size(); ++g) starts[g] += starts[g - 1];
  for (size_t g = 0; g + 1 < starts.size(); ++g) groups->emplace_back(starts[g], starts[g + 1]);
  for (size_t i = 0; i < buffer_.size(); ++i) (*order)[starts[group_of[i]]++] = i;
}

base::Status FileSink::Flush() {
  if (buffer_.empty()) return {};
  // No spare is made while the flush renames spares out of the sink's folder.
  SpareFiles::Paused paused(spares_.get());
  // Rows by file: [begin, end) of `rows` for each group, in arrival order within a group.
  // StageGroup sorts a group's rows by station and keeps the last of each.
  std::vector<size_t> rows;
  std::vector<std::pair<size_t, size_t>> groups;
  GroupForFiles(&rows, &groups);
  if (!journals_[0]) return base::Status::Internal("sink '" + config_.name + "': not open");

  // A large flush (a bounded input's end: thousands of files at once) costs less with the
  // filesystem synced twice, as files staged and then as files renamed, than with all its
  // content written again into the journal. Only while the syncer holds no journal: once this
  // flush is durable, no journal may hold records of its files (a replay after a machine stop
  // would put older versions back), so the journal in use is emptied, and the other one is.
  bool sync_directly = false;
  if (rows.size() >= kSyncDirectlyRows) {
    std::lock_guard<std::mutex> lock(sync_mu_);
    sync_directly = sync_pending_ < 0;
  }
  keep_copies_ = !sync_directly;

  // A large flush stages its files on two threads: this one takes groups from the front, a
  // helper from the back, until they meet, so that both finish together and seldom write into
  // the same folder at once (creating and renaming files there takes the folder's lock). Their
  // files are gathered in group order: the result is the same as one thread's.
  const bool parallel = rows.size() >= kParallelStageRows && groups.size() >= 2;
  std::vector<std::vector<Staged>> staged_by_group(groups.size());
  std::vector<std::vector<StaleParts>> stale_by_group(groups.size());
  std::mutex claim_mu;
  size_t front = 0;
  size_t back = groups.size();
  bool failed = false;  // guarded by claim_mu
  for (Encoder& e : encoders_) {
    e.staged_bytes = 0;
    e.dev_checked_dir.clear();  // a folder may have been replaced since the last flush
  }
  auto stage = [&](Encoder* enc, bool from_front) -> base::Status {
    for (;;) {
      size_t g;
      {
        std::lock_guard<std::mutex> lock(claim_mu);
        if (front >= back || failed) return {};
        g = from_front ? front++ : --back;
      }
      base::Status st = StageGroup(enc, rows, groups[g].first, groups[g].second,
                                   &staged_by_group[g], &stale_by_group[g]);
      if (!st.ok()) {
        std::lock_guard<std::mutex> lock(claim_mu);
        failed = true;
        return st;
      }
    }
  };
  base::Status helper_status;
  std::jthread helper;  // joined on every way out, an exception from this thread's stage too
  if (parallel) {
    helper = std::jthread([&] {
      base::NameThisThread(std::string("stage-").append(config_.name));
      helper_status = stage(&encoders_[1], /*from_front=*/false);
    });
  }
  base::Status stage_status = stage(&encoders_[0], /*from_front=*/true);
  if (helper.joinable()) helper.join();
  if (stage_status.ok()) stage_status = helper_status;
  std::vector<Staged> staged;
  std::vector<StaleParts> stale;
  staged.reserve(groups.size());
  stale.reserve(groups.size());
  // On a failure the staged files are still gathered: `staged` removes their temp files.
  for (size_t g = 0; g < groups.size(); ++g) {
    for (Staged& f : staged_by_group[g]) staged.push_back(std::move(f));
    for (StaleParts& st : stale_by_group[g]) stale.push_back(std::move(st));
  }
  if (!stage_status.ok()) return stage_status;
  const uint64_t staged_bytes = encoders_[0].staged_bytes + encoders_[1].staged_bytes;
  if (sync_directly) {
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
  base::Status s = sync_directly ? SyncFilesystem(config_.path) : Journal(staged, stale);
  if (sync_directly && s.ok()) s = journals_[active_]->Reset();
  if (!s.ok()) return s;
  files_written_ += staged.size();
  bytes_written_ += staged_bytes;
  buffer_.clear();
  batches_.clear();
  return {};
}

base::Status FileSink::Journal(const std::vector<Staged>& staged,
                               const std::vector<StaleParts>& stale) {
  // The files are in place but not synced. One record of them all, synced, makes the flush
  // durable: after a machine stops, Open() writes them again from it.
  record_.Begin(boot_id_, std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count());
  for (const Staged& f : staged) record_.AddFile(Relative(f.final_path), f.content);
  for (const StaleParts& st : stale) {
    record_.AddStale(Relative(st.stem), extension_, st.unsuffixed, st.first_part);
  }
  LakeJournal& journal = *journals_[active_];
  const auto now = std::chrono::steady_clock::now();
  if (journal.size() == 0) journal_since_ = now;
  base::Status s = journal.Append(record_.payload(), sequence_);
  if (!s.ok()) return s;
  ++sequence_;
  // Hand the journal to the syncer when its zeroed room is used up, it is large or old, and the
  // other one is free; flushes go on in the other. While the syncer is busy, this one grows.
  if (background_sync_ &&
      (journal.size() >= journal.allocated() || journal.size() >= kCheckpointBytes ||
       now - journal_since_ >= kCheckpointAge)) {
    std::lock_guard<std::mutex> lock(sync_mu_);
    if (sync_pending_ < 0) {
      sync_pending_ = active_;
      sync_fill_ = std::clamp<uint64_t>(2 * journal.size(), kJournalMinFill, kJournalMaxFill);
      active_ ^= 1;
      sync_cv_.notify_one();
    }
  }
  return {};
}

base::Status FileSink::StageGroup(Encoder* enc, const std::vector<size_t>& group_rows,
                                  size_t group_begin, size_t group_end, std::vector<Staged>* staged,
                                  std::vector<StaleParts>* stale) {
  // The group's rows by station, then in arrival order; of a station's rows only the last one
  // written is kept: emit: update sends a window again, and the newest row replaces the older.
  std::vector<size_t>& order = enc->order;
  order.assign(group_rows.begin() + static_cast<std::ptrdiff_t>(group_begin),
               group_rows.begin() + static_cast<std::ptrdiff_t>(group_end));
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const int c = buffer_[a]->station.compare(buffer_[b]->station);
    return c != 0 ? c < 0 : a < b;
  });
  size_t kept = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    if (i + 1 < order.size() && buffer_[order[i]]->station == buffer_[order[i + 1]]->station) {
      continue;
    }
    order[kept++] = order[i];
  }
  order.resize(kept);

  const window::WindowRow& first = *buffer_[order.front()];
  const std::string rel = PartitionDir(config_.partition_by, first.station, first.window_start_ms);
  const std::string dir = rel.empty() ? config_.path : config_.path + '/' + rel;
  base::Status s = MakeDirs(config_.path, dir, static_cast<mode_t>(config_.dir_mode));
  if (!s.ok()) return s;

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
  std::string content;
  size_t file_bytes = 0;
  size_t file_rows = 0;
  auto finish = [&]() -> base::Status {
    base::Status fs_status = file->Finish(/*sync=*/false);
    if (!fs_status.ok()) return fs_status;
    staged->push_back({std::move(file), "", std::move(content)});
    content.clear();
    return {};
  };
  std::string& scratch = enc->scratch;
  for (const size_t index : order) {
    scratch.clear();
    const window::WindowRow& row = *buffer_[index];
    csv ? AppendCsvRow(row, &scratch) : AppendJsonRow(row, &scratch);
    const bool full = config_.roll_bytes > 0 && file_rows > 0 &&
                      file_bytes + scratch.size() > static_cast<size_t>(config_.roll_bytes);
    if (file && full) {
      s = finish();
      if (!s.ok()) return s;
    }
    if (!file) {
      auto created = NewFile(enc, dir);
      if (!created.ok()) return created.status();
      file = std::move(created).value();
      if (keep_copies_) file->KeepCopy(&content);
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
    file_bytes += scratch.size();
    enc->staged_bytes += scratch.size();
    ++file_rows;
    s = file->Append(scratch);
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

base::Result<std::unique_ptr<StagedFile>> FileSink::NewFile(Encoder* enc, const std::string& dir) {
  if (spares_ != nullptr) {
    if (dir != enc->dev_checked_dir) {
      struct stat st {};
      // Not a folder (a file in its place): no spare, so that the create fails while staging,
      // before any file of the flush is published.
      enc->dev_same =
          ::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && st.st_dev == root_dev_;
      enc->dev_checked_dir = dir;
    }
    if (enc->dev_same) {
      if (auto spare = spares_->Take()) {
        // Opening a file that exists allocates nothing. One that is gone (removed by hand) or
        // on a disk turned read-only falls through to a file created now, which reports why.
        const int fd = ::open(spare->path.c_str(), O_WRONLY | O_CLOEXEC);
        if (fd >= 0)
          return StagedFile::Adopt(std::move(spare->path), fd, enc->cctx, &enc->zstd_out);
        ::unlink(spare->path.c_str());
      }
    }
  }
  return StagedFile::Create(dir, enc->cctx, config_.file_mode, &enc->zstd_out);
}

base::Status FileSink::Close() {
  base::Status s = Flush();
  if (!s.ok() || !journals_[0]) return s;
  // The spares not taken are removed: a closed sink leaves only the lake's files.
  spares_.reset();
  StopSyncer();
  s = SyncAndEmptyJournals();
  if (!s.ok()) return s;
  for (auto& j : journals_) {
    s = j->Remove();
    if (!s.ok()) return s;
    j.reset();
  }
  return {};
}

}  // namespace turnstiled::sink
