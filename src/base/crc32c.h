// Crc32c: CRC-32C (Castagnoli), as in iSCSI and ext4, for checksums of records on disk (state
// snapshots, the file sink's journal). Uses the SSE4.2 crc32 instruction when the CPU has it,
// chosen at run time, and a table otherwise; both give the same value.
#pragma once

#include <cstdint>
#include <string_view>

namespace turnstiled::base {

// `crc`: the CRC of bytes that come before these, to continue it: Crc32c("ab") ==
// Crc32c("b", Crc32c("a")).
uint32_t Crc32c(std::string_view bytes, uint32_t crc = 0);

}  // namespace turnstiled::base
