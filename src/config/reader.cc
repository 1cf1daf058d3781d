#include "config/reader.h"

#include <algorithm>
#include <charconv>
#include <utility>

#include "config/env.h"

namespace turnstiled::config {
namespace {

// Levenshtein distance; keys are short, so the quadratic table is fine.
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// Case and '-' versus '_' are the commonest slips; they count as no distance at all.
std::string Normalize(std::string_view key) {
  std::string out(key);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c == '-') c = '_';
  }
  return out;
}

}  // namespace

// The known key closest to `key`, if it is close enough to be a typo rather than a new word.
std::string SuggestKey(std::string_view key, const std::vector<std::string>& known) {
  const std::string k = Normalize(key);
  std::string best;
  size_t best_d = SIZE_MAX;
  for (const std::string& cand : known) {
    const size_t d = EditDistance(k, Normalize(cand));
    if (d < best_d) {
      best_d = d;
      best = cand;
    }
  }
  if (best_d <= 2 && best_d * 2 < std::max(k.size(), best.size())) return best;
  return "";
}

void Diagnostics::Add(std::string path, int line, std::string message) {
  errors_.push_back({std::move(path), line, std::move(message)});
}

int LineIn(const std::map<std::string, int>& lines, std::string path) {
  while (!path.empty()) {
    auto it = lines.find(path);
    if (it != lines.end() && it->second > 0) return it->second;
    const size_t cut = path.find_last_of(".[");
    path.resize(cut == std::string::npos ? 0 : cut);
  }
  return 1;
}

int LoadResult::Line(const std::string& path) const { return LineIn(lines, path); }

int Diagnostics::Line(std::string path) const { return LineIn(lines_, std::move(path)); }

std::vector<ConfigError> Diagnostics::TakeSorted() {
  std::stable_sort(errors_.begin(), errors_.end(), [](const ConfigError& a, const ConfigError& b) {
    return a.line != b.line ? a.line < b.line : a.path < b.path;
  });
  return std::move(errors_);
}

int LineOf(const YAML::Node& node) {
  if (!node.IsDefined()) return 0;
  const int line = node.Mark().line;
  return line >= 0 ? line + 1 : 0;
}

std::string Describe(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "nothing";
  if (node.IsMap()) return "a map";
  if (node.IsSequence()) return "a list";
  return "'" + node.Scalar() + "'";
}

MapReader::MapReader(Diagnostics* diag, const YAML::Node& node, std::string path, int line)
    : diag_(diag), path_(std::move(path)), line_(line) {
  if (!path_.empty()) diag_->NoteLine(path_, line_);
  if (!node.IsDefined() || node.IsNull()) return;
  if (!node.IsMap()) {
    diag_->Add(path_, LineOf(node) > 0 ? LineOf(node) : line_,
               "expected a map, got " + Describe(node));
    return;
  }
  for (auto it = node.begin(); it != node.end(); ++it) {
    const YAML::Node k = it->first;  // a copy: `it->` returns a temporary
    if (!k.IsScalar()) {
      diag_->Add(path_, LineOf(k), "keys must be plain names, got " + Describe(k));
      continue;
    }
    if (const Entry* first = Find(k.Scalar())) {
      diag_->Add(PathOf(k.Scalar()), LineOf(k),
                 "duplicate key '" + k.Scalar() + "' (first given on line " +
                     std::to_string(LineOf(first->key_node)) + ")");
      continue;
    }
    entries_.push_back({k.Scalar(), k, it->second});
  }
}

std::string MapReader::PathOf(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

const MapReader::Entry* MapReader::Find(std::string_view key) const {
  for (const Entry& e : entries_) {
    if (e.key == key) return &e;
  }
  return nullptr;
}

const MapReader::Entry* MapReader::Use(std::string_view key) {
  if (std::find(known_.begin(), known_.end(), key) == known_.end()) known_.emplace_back(key);
  const Entry* e = Find(key);
  if (e != nullptr) diag_->NoteLine(PathOf(key), LineOf(e->key_node));
  return e;
}

int MapReader::KeyLine(std::string_view key) const {
  const Entry* e = Find(key);
  return e != nullptr ? LineOf(e->key_node) : line_;
}

void MapReader::Missing(std::string_view key, std::string_view why) {
  std::string msg = "missing required key '" + std::string(key) + "'";
  if (!why.empty()) msg += " (" + std::string(why) + ")";
  diag_->Add(PathOf(key), line_, std::move(msg));
}

void MapReader::KeyError(std::string_view key, std::string message) {
  diag_->Add(PathOf(key), KeyLine(key), std::move(message));
}

void MapReader::ValueError(std::string_view key, std::string message) {
  const Entry* e = Find(key);
  const int line = e != nullptr && LineOf(e->value) > 0 ? LineOf(e->value) : KeyLine(key);
  diag_->Add(PathOf(key), line, std::move(message));
}

bool MapReader::Scalar(std::string_view key, std::string_view expected, std::string* out) {
  const Entry* e = Use(key);
  if (e == nullptr) return true;
  if (!e->value.IsScalar()) {
    ValueError(key, "expected " + std::string(expected) + ", got " + Describe(e->value));
    return false;
  }
  std::vector<std::string> errors;
  std::string text = ExpandEnv(e->value.Scalar(), diag_->env(), &errors);
  for (std::string& m : errors) ValueError(key, std::move(m));
  if (!errors.empty()) return false;
  *out = std::move(text);
  return true;
}

bool MapReader::String(std::string_view key, std::string* out) {
  return Scalar(key, "a string", out);
}

bool MapReader::Bool(std::string_view key, bool* out) {
  std::string text;
  if (!Scalar(key, "true or false", &text)) return false;
  if (!Has(key)) return true;
  const std::string t = Normalize(text);
  if (t == "true" || t == "false") {
    *out = t == "true";
    return true;
  }
  ValueError(key, "expected true or false, got '" + text + "'");
  return false;
}

bool MapReader::ReadInt(std::string_view key, int64_t* out, int64_t min, int64_t max) {
  std::string text;
  if (!Scalar(key, "an integer", &text)) return false;
  if (!Has(key)) return true;
  int64_t v = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec == std::errc::invalid_argument || ptr != end) {
    ValueError(key, "expected an integer, got '" + text + "'");
    return false;
  }
  if (ec == std::errc::result_out_of_range || v > max) {
    ValueError(key, "must be at most " + std::to_string(max) + ", got " + text);
    return false;
  }
  if (v < min) {
    ValueError(key, "must be at least " + std::to_string(min) + ", got " + text);
    return false;
  }
  *out = v;
  return true;
}

bool MapReader::Duration(std::string_view key, base::Millis* out) {
  std::string text;
  if (!Scalar(key, "a duration", &text)) return false;
  if (!Has(key)) return true;
  if (std::optional<base::Millis> ms = base::ParseDuration(text)) {
    *out = *ms;
    return true;
  }
  ValueError(key, "invalid duration '" + text +
                      "'; write a whole number and a unit: 500ms, 30s, 5m, 4h or 1d (parts may "
                      "be joined: 1h30m)");
  return false;
}

bool MapReader::StringList(std::string_view key, std::vector<std::string>* out) {
  const Entry* e = Use(key);
  if (e == nullptr) return true;
  if (!e->value.IsSequence()) {
    std::string msg = "expected a list, got " + Describe(e->value);
    if (e->value.IsScalar()) msg += "; write [" + e->value.Scalar() + "]";
    ValueError(key, std::move(msg));
    return false;
  }
  std::vector<std::string> items;
  bool ok = true;
  for (size_t i = 0; i < e->value.size(); ++i) {
    const YAML::Node item = e->value[i];
    const std::string item_path = PathOf(key) + "[" + std::to_string(i) + "]";
    if (!item.IsScalar()) {
      diag_->Add(item_path, LineOf(item), "expected a string, got " + Describe(item));
      ok = false;
      continue;
    }
    std::vector<std::string> errors;
    items.push_back(ExpandEnv(item.Scalar(), diag_->env(), &errors));
    for (std::string& m : errors) diag_->Add(item_path, LineOf(item), std::move(m));
    ok = ok && errors.empty();
  }
  if (ok) *out = std::move(items);
  return ok;
}

bool MapReader::StringMap(std::string_view key, std::map<std::string, std::string>* out) {
  const Entry* e = Use(key);
  if (e == nullptr || e->value.IsNull()) return true;
  if (!e->value.IsMap()) {
    ValueError(key, "expected a map of names to values, got " + Describe(e->value));
    return false;
  }
  std::map<std::string, std::string> values;
  bool ok = true;
  for (auto it = e->value.begin(); it != e->value.end(); ++it) {
    const YAML::Node k = it->first;  // copies: `it->` returns a temporary
    const YAML::Node v = it->second;
    if (!k.IsScalar()) {
      diag_->Add(PathOf(key), LineOf(k), "keys must be plain names, got " + Describe(k));
      ok = false;
      continue;
    }
    const std::string entry_path = PathOf(key) + "." + k.Scalar();
    if (v.IsNull()) {
      values[k.Scalar()] = "";
      continue;
    }
    if (!v.IsScalar()) {
      diag_->Add(entry_path, LineOf(v), "expected a single value, got " + Describe(v));
      ok = false;
      continue;
    }
    std::vector<std::string> errors;
    values[k.Scalar()] = ExpandEnv(v.Scalar(), diag_->env(), &errors);
    for (std::string& m : errors) diag_->Add(entry_path, LineOf(v), std::move(m));
    ok = ok && errors.empty();
  }
  if (ok) *out = std::move(values);
  return ok;
}

MapReader MapReader::Map(std::string_view key) {
  const Entry* e = Use(key);
  if (e == nullptr) return MapReader(diag_, YAML::Node(), PathOf(key), line_);
  return MapReader(diag_, e->value, PathOf(key), LineOf(e->key_node));
}

YAML::Node MapReader::Node(std::string_view key) {
  const Entry* e = Use(key);
  return e != nullptr ? e->value : YAML::Node();
}

void MapReader::Finish() {
  for (const Entry& e : entries_) {
    if (std::find(known_.begin(), known_.end(), e.key) != known_.end()) continue;
    std::string msg = "unknown key '" + e.key + "'";
    const std::string suggestion = SuggestKey(e.key, known_);
    if (!suggestion.empty()) {
      msg += "; did you mean '" + suggestion + "'?";
    } else {
      msg += "; known keys here: ";
      for (size_t i = 0; i < known_.size(); ++i) msg += (i > 0 ? ", " : "") + known_[i];
    }
    diag_->Add(PathOf(e.key), LineOf(e.key_node), std::move(msg));
  }
}

}  // namespace turnstiled::config
