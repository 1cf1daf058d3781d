// The path-aware YAML reader behind LoadConfig: reads one map at a time, turns every problem
// into a ConfigError with its path and line, and never stops at the first.
//
// A MapReader is made for one map of the document (the root, `window`, `sinks[1]`, ...).
// The schema asks it for each key it knows, with the type it expects; whatever the document
// holds that nobody asked for is reported by Finish() as an unknown key, with a "did you
// mean" when a known key is close. So the schema *is* the list of known keys, written once.
//
// A getter leaves its output untouched when the key is absent (the in-place default of the
// config struct stands) or when the value is wrong (an error is recorded instead). Getters
// return false only in the second case, so semantic checks can skip values that were
// already reported.
//
// Not thread-safe; lives for one LoadConfigText call. Borrowed: `diag` must outlive readers.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/duration.h"
#include "config/loader.h"

namespace turnstiled::config {

// The errors of one load, and the line where each path was seen (for semantic checks made
// after reading, which must still point at a line).
class Diagnostics {
 public:
  explicit Diagnostics(const EnvLookup& env) : env_(env) {}

  void Add(std::string path, int line, std::string message);
  void NoteLine(const std::string& path, int line) { lines_.emplace(path, line); }
  // The line of `path`, else of its nearest recorded ancestor, else 1.
  int Line(std::string path) const;
  // The errors in document order: by line, then path, then the order they were found.
  std::vector<ConfigError> TakeSorted();
  const std::map<std::string, int>& lines() const { return lines_; }

  const EnvLookup& env() const { return env_; }

 private:
  const EnvLookup& env_;
  std::vector<ConfigError> errors_;
  std::map<std::string, int> lines_;
};

// The known key closest to `key`, if it is close enough to be a typo rather than a new word
// (case and '-' versus '_' count as no distance); "" otherwise.
std::string SuggestKey(std::string_view key, const std::vector<std::string>& known);

// 1-based line of a node; 0 for a node that is not in the document.
int LineOf(const YAML::Node& node);

// "a map", "a list", "nothing", "'text'": how a node reads in an error message.
std::string Describe(const YAML::Node& node);

class MapReader {
 public:
  // `node` may be absent or null (an empty section): then every getter keeps its default.
  // Anything else that is not a map is reported once, as a wrong type.
  MapReader(Diagnostics* diag, const YAML::Node& node, std::string path, int line);

  const std::string& path() const { return path_; }
  int line() const { return line_; }
  std::string PathOf(std::string_view key) const;
  bool Has(std::string_view key) const { return Find(key) != nullptr; }

  bool String(std::string_view key, std::string* out);
  bool Bool(std::string_view key, bool* out);
  bool Duration(std::string_view key, base::Millis* out);
  bool StringList(std::string_view key, std::vector<std::string>* out);
  // Every entry's value is taken as its text, whatever its YAML type, if it is a scalar.
  bool StringMap(std::string_view key, std::map<std::string, std::string>* out);

  template <typename T>
  bool Int(std::string_view key, T* out, int64_t min = std::numeric_limits<T>::min()) {
    int64_t v = 0;
    if (!ReadInt(key, &v, min, std::numeric_limits<T>::max())) return false;
    if (Has(key)) *out = static_cast<T>(v);
    return true;
  }

  // One of `values`, spelled as Name(value) (config.h).
  template <typename E, size_t N>
  bool Enum(std::string_view key, E* out, const E (&values)[N]) {
    std::string text;
    if (!Scalar(key, "a name", &text)) return false;
    if (!Has(key)) return true;
    std::string allowed;
    for (E v : values) {
      if (text == Name(v)) {
        *out = v;
        return true;
      }
      allowed += allowed.empty() ? "" : ", ";
      allowed += Name(v);
    }
    ValueError(key, "invalid value '" + text + "'; expected one of: " + allowed);
    return false;
  }

  // The map under `key`, for a nested section. Absent: an empty reader at this map's line.
  MapReader Map(std::string_view key);
  // The raw value of `key` (marking it known), for shapes the getters do not cover.
  YAML::Node Node(std::string_view key);
  int KeyLine(std::string_view key) const;

  // Errors about this map's keys.
  void Missing(std::string_view key, std::string_view why = "");
  void KeyError(std::string_view key, std::string message);
  void ValueError(std::string_view key, std::string message);

  // Reports every key no getter asked for. Call once, after the last getter.
  void Finish();

 private:
  struct Entry {
    std::string key;
    YAML::Node key_node;
    YAML::Node value;
  };

  const Entry* Find(std::string_view key) const;
  const Entry* Use(std::string_view key);
  // The expanded text of a scalar value. False (with an error) on a non-scalar or a failed
  // expansion; true with *out untouched when absent.
  bool Scalar(std::string_view key, std::string_view expected, std::string* out);
  bool ReadInt(std::string_view key, int64_t* out, int64_t min, int64_t max);

  Diagnostics* diag_;
  std::string path_;
  int line_;
  std::vector<Entry> entries_;
  std::vector<std::string> known_;  // every key a getter asked for, present or not
};

}  // namespace turnstiled::config
