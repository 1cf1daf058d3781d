// FileSource: a bounded source over files, plain or .zst, globs allowed (SPEC §2, §4).
//
// Files are read in the order of `source.file.paths`, each glob's matches sorted by name, in
// one thread: a device's readings may span files (consecutive MTA weeks), and must reach its
// shard in order. Each line is one record; the line number is its offset. The watermark stays
// back until the end of the input, so nothing is late; then every window is emitted.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ingest/ingestor.h"
#include "ingest/source.h"

namespace turnstiled::ingest {

class FileSource : public Source {
 public:
  static base::Result<std::unique_ptr<FileSource>> Create(const IngestContext& ctx, int source);
  void Run(const std::atomic<bool>& stop) override;
  Router& router() override { return ingestor_->router(); }
  // The expanded, ordered file list.
  const std::vector<std::string>& files() const { return files_; }
  bool failed() const { return failed_; }

 private:
  FileSource(const IngestContext& ctx, std::unique_ptr<Ingestor> ingestor,
             std::vector<std::string> files);

  const IngestContext ctx_;
  std::unique_ptr<Ingestor> ingestor_;
  const std::vector<std::string> files_;
  bool failed_ = false;
};

// Expands globs (a path without glob characters is kept even if missing, so the error names
// it). Returns an error for a glob that matches nothing.
base::Result<std::vector<std::string>> ExpandPaths(const std::vector<std::string>& patterns);

}  // namespace turnstiled::ingest
