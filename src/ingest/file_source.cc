#include "ingest/file_source.h"

#include <glob.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "base/input_file.h"
#include "base/log.h"

namespace turnstiled::ingest {

base::Result<std::vector<std::string>> ExpandPaths(const std::vector<std::string>& patterns) {
  std::vector<std::string> out;
  for (const std::string& p : patterns) {
    if (p.find_first_of("*?[") == std::string::npos) {
      out.push_back(p);
      continue;
    }
    glob_t g{};
    const int rc = ::glob(p.c_str(), 0, nullptr, &g);
    if (rc != 0) {
      globfree(&g);
      return base::Status::NotFound("no file matches '" + p + "'");
    }
    std::vector<std::string> matches(g.gl_pathv, g.gl_pathv + g.gl_pathc);
    globfree(&g);
    std::sort(matches.begin(), matches.end());
    out.insert(out.end(), matches.begin(), matches.end());
  }
  return out;
}

base::Result<std::unique_ptr<FileSource>> FileSource::Create(const IngestContext& ctx, int source) {
  auto files = ExpandPaths(ctx.config->source.file.paths);
  if (!files.ok()) return files.status();
  auto ingestor = Ingestor::Create(ctx, source);
  if (!ingestor.ok()) return ingestor.status();
  return std::unique_ptr<FileSource>(
      new FileSource(ctx, std::move(ingestor).value(), std::move(files).value()));
}

FileSource::FileSource(const IngestContext& ctx, std::unique_ptr<Ingestor> ingestor,
                       std::vector<std::string> files)
    : ctx_(ctx), ingestor_(std::move(ingestor)), files_(std::move(files)) {}

namespace {
// Hands each decoded line of a chunk to the ingestor, numbered within its file.
struct Lines final : decode::LineHandler {
  Lines(Ingestor* ingestor, int32_t slot, int64_t first, PartitionClock* clock)
      : ingestor_(ingestor), slot_(slot), first_(first), clock_(clock) {}
  void OnLine(std::string_view line, int64_t line_in_chunk, decode::DecodeStatus status,
              const decode::Record& record) override {
    ingestor_->HandleDecoded(line, status, record, slot_, first_ + line_in_chunk, clock_);
  }
  Ingestor* const ingestor_;
  const int32_t slot_;
  const int64_t first_;  // lines before the chunk
  PartitionClock* const clock_;
};
}  // namespace

void FileSource::Run(const std::atomic<bool>& stop) {
  // Until the end of the input the frontier is unknown, so no window closes early.
  const window::SourceProgress reading{window::kNoTime, false, false};
  // One set of read buffers for every file, one after another.
  base::LineChunkReader::Buffers buffers;
  for (const std::string& path : files_) {
    if (stop.load(std::memory_order_relaxed)) break;
    // Each file is its own partition, with its own high mark: a later week is not "future"
    // with respect to an earlier one.
    PartitionClock clock;
    const int32_t slot = ctx_.partitions->Slot(path, -1);
    // A FIFO or pipe may wait for its writer: the wait still sees a stop and keeps the
    // source's heartbeat going (it is waiting, not stuck). A regular file is read and
    // decompressed a few chunks ahead, on a thread of its own, while this one decodes.
    auto reader = base::LineChunkReader::Open(
        path, &stop, [this] { Beat(); }, /*read_ahead=*/true, &buffers);
    if (!reader.ok()) {
      base::Log(base::LogLevel::kError, "file-source", "cannot read input file",
                {{"path", path}, {"error", reader.status().ToString()}});
      failed_ = true;
      continue;
    }
    base::Log(base::LogLevel::kInfo, "file-source", "reading",
              {{"path", path}, {"zstd", (*reader)->compressed() ? "true" : "false"}});
    int64_t line_no = 0;
    std::string_view chunk;
    while (!stop.load(std::memory_order_relaxed) && (*reader)->Next(&chunk)) {
      Beat();
      // Records with no append time are judged against the wall clock (max_future).
      ingestor_->SetNow(std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count());
      Lines lines{ingestor_.get(), slot, line_no, &clock};
      line_no += ingestor_->decoder().DecodeLines(chunk, &lines);
      // A stream's lines go to the shards as they arrive; a regular file's in full batches,
      // which the router sends as they fill, and the rest at the end of the file.
      if (!(*reader)->reads_ahead()) ingestor_->router().Flush(reading);
      ingestor_->PublishMetrics();
    }
    ingestor_->router().Flush(reading);
    if (!(*reader)->status().ok()) {
      base::Log(base::LogLevel::kError, "file-source", "read failed",
                {{"path", path}, {"error", (*reader)->status().ToString()}});
      failed_ = true;
    }
  }
  // A stopped file source is not finished: its open windows must not be emitted as final.
  const bool finished = !stop.load();
  ingestor_->router().Flush(window::SourceProgress{window::kNoTime, !finished, finished});
  ingestor_->PublishMetrics();
}

}  // namespace turnstiled::ingest
