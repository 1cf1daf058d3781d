// A small deterministic fuzz: truncations, mutations and random bytes for every decoder.
//
// It asserts only what must hold for any input: Decode() returns a status from the closed
// set, never throws, reads no byte outside the message (each message sits in a heap block of
// exactly its size, so ASan sees an overread), and returns the same answer for the same bytes
// whatever the decoder saw before. The sanitizer builds in CI run it.

#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "decode/decode_test_util.h"
#include "decode/decoder.h"
#include "decode/mta_csv.h"

using namespace turnstiled;
using namespace turnstiled::decode;
using namespace turnstiled::decode::testing;
using config::FormatType;

namespace {

struct Rng {
  uint64_t s;
  uint64_t Next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  size_t Below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(Next() % n); }
};

constexpr int kIterations = 100000;

// Bytes that steer the decoders into their branches.
constexpr char kSpecial[] = ",\"'\n\r \t{}[]:/-+.0123456789eEZT\\\x00\x80\xc3\xff";

std::vector<std::string> Seeds(FormatType type) {
  switch (type) {
    case FormatType::kMtaCsv:
      return {
          "A002,R051,02-00-00,59 ST,NQR456W,BMT,12/30/2023,03:00:00,REGULAR,102019,73801",
          "A002,R051,02-00-00,59 ST,NQR456W,BMT,12-30-23,03:00:00,REGULAR,1,2,7,2023-12-30 "
          "03:00:00\r\n",
          "C/A,UNIT,SCP,STATION,LINENAME,DIVISION,DATE,TIME,DESC,ENTRIES,EXITS     \n"
          "N519,R461,00-00-00,B'WAY-LAFAYETTE,BDFQ6,IND,03/10/2024,02:30:00,RECOVR AUD,353563,"
          "2301991\n",
          "\"A002\",\"R051\",\"02-00-00\",\"LEXINGTON AV, 53 ST\",\"EM6\",\"IND\",\"12/30/2023\","
          "\"03:00:00\",\"REGULAR\",\"-5\",\"+9223372036854775807\"",
      };
    case FormatType::kSeedCsv:
      return {
          "timestamp,station,turnstile_id,device_id,entry,exit,entry_datetime\n"
          "'2024-01-06 00:00:00','2 ST','N001-R002','00-00-01',17,4,'2024-01-06 04:00:00'",
          "\"t\",\"LEXINGTON AV, 53 ST\",\"N1\",\"00\",1,2,\"2024-11-03T01:30:00.250-05:00\"\r\n",
          "'t','B''WAY-LAFAYETTE','N'1','0',1,2,'2024-03-10 02:30:00Z'",
      };
    case FormatType::kJson:
      return {
          R"({"station":"2 ST","device":"N001,R002,00-00-00","time":"2024-01-06T05:00:00Z",)"
          R"("entries":12,"exits":3})",
          R"({"exits":1.2e3,"entries":-0.0,"time":1704517200123,"device":18446744073709551615,)"
          R"("x":{"a":[1,{"b":null}]},"station":"B\u0027WAY"})",
          R"({"station":"S","device":7,"time":"2024-11-03T01:30:00.5+01:00","entries":1,"exits":2})",
      };
  }
  return {};
}

std::string Mutate(const std::string& seed, Rng* rng) {
  std::string m = seed;
  const size_t edits = 1 + rng->Below(4);
  for (size_t e = 0; e < edits; ++e) {
    const size_t at = rng->Below(m.size() + 1);
    switch (rng->Below(6)) {
      case 0:  // overwrite with a special byte
        if (at < m.size()) m[at] = kSpecial[rng->Below(sizeof kSpecial - 1)];
        break;
      case 1:  // overwrite with any byte
        if (at < m.size()) m[at] = static_cast<char>(rng->Below(256));
        break;
      case 2:  // insert a special byte
        m.insert(at, 1, kSpecial[rng->Below(sizeof kSpecial - 1)]);
        break;
      case 3:  // delete a run
        m.erase(at, 1 + rng->Below(8));
        break;
      case 4: {  // duplicate a run
        const std::string run = m.substr(at, 1 + rng->Below(16));
        m.insert(rng->Below(m.size() + 1), run);
        break;
      }
      default:  // truncate
        m.resize(at);
        break;
    }
  }
  return m;
}

// Decodes `msg` from a heap block of exactly its size, and checks what must hold for any input.
Decoded DecodeExact(Decoder* d, const std::string& msg) {
  std::unique_ptr<char[]> block(new char[msg.size()]);
  if (!msg.empty()) std::memcpy(block.get(), msg.data(), msg.size());
  const Decoded r = Decode(d, std::string_view(block.get(), msg.size()));
  CHECK(static_cast<int>(r.status) < kDecodeStatusCount);
  if (r.status == DecodeStatus::kOk) {
    CHECK_FALSE(r.station.empty());
    CHECK_FALSE(r.device.empty());
  }
  return r;
}

void CheckSame(const Decoded& a, const Decoded& b) {
  CHECK(a.status == b.status);
  CHECK(a.station == b.station);
  CHECK(a.device == b.device);
  CHECK(a.event_ms == b.event_ms);
  CHECK(a.entries == b.entries);
  CHECK(a.exits == b.exits);
}

void Fuzz(FormatType type, const std::string& zone) {
  auto fresh = Make(type, zone, /*max_message_bytes=*/4096);
  auto busy = Make(type, zone, /*max_message_bytes=*/4096);
  const std::vector<std::string> seeds = Seeds(type);
  for (const std::string& s : seeds) {
    REQUIRE(DecodeExact(fresh.get(), s).status == DecodeStatus::kOk);
  }

  // Every truncation and every suffix of every seed.
  for (const std::string& s : seeds) {
    for (size_t n = 0; n <= s.size(); ++n) {
      DecodeExact(fresh.get(), s.substr(0, n));
      DecodeExact(fresh.get(), s.substr(n));
    }
  }

  Rng rng{0x7475726e7374696cULL + static_cast<uint64_t>(type)};
  std::vector<std::string> recent(8);
  int ok = 0;
  for (int i = 0; i < kIterations; ++i) {
    std::string msg;
    if (i % 10 == 0) {
      msg.resize(rng.Below(160));
      for (char& c : msg) c = static_cast<char>(rng.Below(256));
    } else {
      msg = Mutate(seeds[rng.Below(seeds.size())], &rng);
    }
    const Decoded a = DecodeExact(fresh.get(), msg);
    // The same bytes after some other message give the same answer.
    DecodeExact(busy.get(), recent[rng.Below(recent.size())]);
    const Decoded b = DecodeExact(busy.get(), msg);
    CheckSame(a, b);
    recent[static_cast<size_t>(i) % recent.size()] = msg;
    ok += a.status == DecodeStatus::kOk;
  }
  // The mutations are mild enough that some still decode, so the checks above saw records.
  CHECK(ok > 100);
  MESSAGE(std::string(config::Name(type))
          << ": " << ok << " of " << kIterations << " mutated messages decoded");
}

}  // namespace

TEST_CASE("mta-csv survives truncations, mutations and random bytes") {
  Fuzz(FormatType::kMtaCsv, "America/New_York");
}

TEST_CASE("seed-csv survives truncations, mutations and random bytes") {
  Fuzz(FormatType::kSeedCsv, "America/New_York");
}

TEST_CASE("json survives truncations, mutations and random bytes") {
  Fuzz(FormatType::kJson, "America/New_York");
}

TEST_CASE("lines longer than the scanner's 16-byte blocks, at every alignment") {
  auto d = Make(FormatType::kMtaCsv, "UTC", 4096);
  const std::string row =
      "A002,R051,02-00-00,59 ST,NQR456W,BMT,12/30/2023,03:00:00,REGULAR,102019,73801";
  for (size_t pad = 0; pad < 48; ++pad) {
    for (const std::string& msg : {std::string(pad, '\n') + row, row + std::string(pad, ' '),
                                   std::string(pad, ' ') + row + "\r\n" + std::string(pad, '\n'),
                                   row.substr(0, 19) + std::string(pad, 'X') + row.substr(19)}) {
      const Decoded r = DecodeExact(d.get(), msg);
      CHECK(r.status == DecodeStatus::kOk);
      CHECK(r.exits == 73801);
    }
  }
}

TEST_CASE("DecodeLines over many lines at once says what Decode says of each line") {
  // mta-csv twice: with the CPU's scan loop (AVX2 here) and with the baseline (SSE2) one.
  for (const auto& [type, baseline] :
       {std::pair{FormatType::kMtaCsv, false}, std::pair{FormatType::kMtaCsv, true},
        std::pair{FormatType::kSeedCsv, false}}) {
    CAPTURE(config::Name(type));
    CAPTURE(baseline);
    auto chunked = Make(type, "America/New_York", 4096);
    if (baseline) dynamic_cast<MtaCsvDecoder&>(*chunked).UseBaselineScanForTesting();
    auto single = Make(type, "America/New_York", 4096);
    const std::vector<std::string> seeds = Seeds(type);
    Rng rng{0x6c696e6573ULL + static_cast<uint64_t>(type)};
    size_t compared = 0;
    for (int i = 0; i < 3000; ++i) {
      std::string chunk;
      const size_t lines = 1 + rng.Below(12);
      for (size_t l = 0; l < lines; ++l) {
        if (l > 0) chunk += '\n';
        if (rng.Below(8) == 0) {
          chunk.append(rng.Below(70), "   \r,,\"\x80"[rng.Below(7)]);
        } else {
          chunk += rng.Below(3) == 0 ? seeds[rng.Below(seeds.size())]
                                     : Mutate(seeds[rng.Below(seeds.size())], &rng);
        }
      }
      if (rng.Below(2) == 0) chunk += '\n';
      // From a heap block of exactly the chunk's size, so ASan sees a read past it.
      if (chunk.empty()) continue;
      std::unique_ptr<char[]> block(new char[chunk.size()]);
      std::memcpy(block.get(), chunk.data(), chunk.size());
      compared += CheckDecodeLinesMatches(chunked.get(), single.get(),
                                          std::string_view(block.get(), chunk.size()));
    }
    CHECK(compared > 5000);
  }
}

TEST_CASE("mta-csv's fast path and its general path agree on every line") {
  // A leading blank sends a line down the general path (quotes allowed, UTF-8 checked), which
  // must say what the fast path says of the same line without it.
  auto fast = Make(FormatType::kMtaCsv, "America/New_York", 4096);
  auto general = Make(FormatType::kMtaCsv, "America/New_York", 4096);
  const std::vector<std::string> seeds = Seeds(FormatType::kMtaCsv);
  Rng rng{0x70617468ULL};
  int ok = 0;
  for (int i = 0; i < kIterations; ++i) {
    const std::string msg = Mutate(seeds[rng.Below(seeds.size())], &rng);
    if (msg.empty() || msg.front() == ' ' || msg.front() == '\t') continue;
    const Decoded a = DecodeExact(fast.get(), msg);
    const Decoded b = DecodeExact(general.get(), " " + msg);
    CheckSame(a, b);
    ok += a.status == DecodeStatus::kOk;
  }
  CHECK(ok > 100);
}
