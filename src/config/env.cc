#include "config/env.h"

#include <cstdlib>

namespace turnstiled::config {
namespace {

bool IsNameStart(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9'); }

bool IsName(std::string_view s) {
  if (s.empty() || !IsNameStart(s.front())) return false;
  for (char c : s) {
    if (!IsNameChar(c)) return false;
  }
  return true;
}

}  // namespace

EnvLookup ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

std::string ExpandEnv(std::string_view text, const EnvLookup& env,
                      std::vector<std::string>* errors) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, 3, "$${") == 0) {
      out += "${";
      i += 3;
      continue;
    }
    if (text.compare(i, 2, "${") != 0) {
      out += text[i++];
      continue;
    }
    const size_t close = text.find('}', i + 2);
    if (close == std::string_view::npos) {
      // The text itself is not echoed: it may be a DSN or a password.
      errors->push_back("unterminated '${' (no closing '}'); write ${NAME} or ${NAME:-default}");
      return out;
    }
    const std::string_view body = text.substr(i + 2, close - i - 2);
    const std::string_view ref = text.substr(i, close - i + 1);
    i = close + 1;
    const size_t sep = body.find(":-");
    const std::string_view name = body.substr(0, sep);
    if (!IsName(name)) {
      errors->push_back("invalid variable reference '" + std::string(ref) +
                        "'; write ${NAME} or ${NAME:-default}, where NAME is letters, digits "
                        "and '_'");
      continue;
    }
    const std::optional<std::string> value = env(std::string(name));
    if (sep != std::string_view::npos) {
      out += value && !value->empty() ? *value : std::string(body.substr(sep + 2));
    } else if (value) {
      out += *value;
    } else {
      errors->push_back("undefined variable ${" + std::string(name) +
                        "}; set it in the environment, or give a default: ${" + std::string(name) +
                        ":-value}");
    }
  }
  return out;
}

}  // namespace turnstiled::config
