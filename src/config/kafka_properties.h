// Checks librdkafka property names and values at load time, so that `validate` (and `run`,
// before it connects anywhere) refuses a typo with its line and the property it meant.
#pragma once

#include <string>

namespace turnstiled::config {

// "" when librdkafka knows `name` and accepts `value`; otherwise why not, with a "did you
// mean" when a known property is close. Thread-safe.
std::string CheckKafkaProperty(const std::string& name, const std::string& value);

}  // namespace turnstiled::config
