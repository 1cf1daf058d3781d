// The /live page, embedded at build time from src/live/live.html.
#pragma once

#include <string_view>

namespace turnstiled::live {

std::string_view PageHtml();

}  // namespace turnstiled::live
