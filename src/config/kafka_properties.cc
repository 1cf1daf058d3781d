#include "config/kafka_properties.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>

#include <cctype>
#include <string_view>
#include <vector>

#include "config/reader.h"

namespace turnstiled::config {
namespace {

// Every property name librdkafka documents, read once from its own table
// (rd_kafka_conf_properties_show: one row per property, the name first).
const std::vector<std::string>& KnownProperties() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    char* text = nullptr;
    size_t size = 0;
    FILE* f = open_memstream(&text, &size);
    if (f == nullptr) return out;
    rd_kafka_conf_properties_show(f);
    fclose(f);
    std::string_view all(text, size);
    while (!all.empty()) {
      const size_t eol = all.find('\n');
      std::string_view line = all.substr(0, eol);
      all = eol == std::string_view::npos ? std::string_view() : all.substr(eol + 1);
      size_t n = 0;
      while (n < line.size() && (std::islower(static_cast<unsigned char>(line[n])) ||
                                 std::isdigit(static_cast<unsigned char>(line[n])) ||
                                 line[n] == '.' || line[n] == '_')) {
        ++n;
      }
      if (n == 0 || n >= line.size() || line[n] != ' ') continue;
      if (line.find('|') == std::string_view::npos) continue;
      out.emplace_back(line.substr(0, n));
    }
    free(text);
    return out;
  }();
  return names;
}

}  // namespace

std::string CheckKafkaProperty(const std::string& name, const std::string& value) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[512] = {0};
  const rd_kafka_conf_res_t rc =
      rd_kafka_conf_set(conf, name.c_str(), value.c_str(), errstr, sizeof errstr);
  rd_kafka_conf_destroy(conf);
  if (rc == RD_KAFKA_CONF_OK) return "";
  if (rc == RD_KAFKA_CONF_UNKNOWN) {
    std::string msg = "unknown librdkafka property '" + name + "'";
    const std::string suggestion = SuggestKey(name, KnownProperties());
    if (!suggestion.empty()) msg += "; did you mean '" + suggestion + "'?";
    return msg;
  }
  return "invalid value for librdkafka property '" + name + "': " + errstr;
}

}  // namespace turnstiled::config
