#include "sink/sink.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "base/civil_time.h"
#include "base/input_file.h"
#include "sink/dead_letter.h"
#include "sink/file_dead_letter.h"
#include "sink/row_format.h"
#include "sink/sink_test_util.h"
#include "sink/stdout_sink.h"

using namespace turnstiled;
using namespace turnstiled::sink;
using namespace turnstiled::sink::testing;

namespace {
const int64_t kJan6 = base::DaysFromCivil(2024, 1, 6) * 86400 * 1000;

// What a stdout sink prints for `rows` in one flush, line by line (the last line is empty).
std::vector<std::string> PrintedLines(const std::vector<window::WindowRow>& rows) {
  char* text = nullptr;
  size_t size = 0;
  std::FILE* out = open_memstream(&text, &size);
  {
    StdoutSink sink(out);
    REQUIRE(sink.Write(rows).ok());
    REQUIRE(sink.Flush().ok());
  }
  std::fclose(out);
  const std::string printed(text, size);
  std::free(text);
  std::vector<std::string> lines;
  for (size_t at = 0, nl; (nl = printed.find('\n', at)) != std::string::npos; at = nl + 1) {
    lines.push_back(printed.substr(at, nl - at));
  }
  return lines;
}

// The columns a line takes on a terminal: UTF-8 continuation bytes take none.
std::ptrdiff_t Columns(const std::string& line) {
  return std::count_if(line.begin(), line.end(), [](char c) { return (c & 0xC0) != 0x80; });
}
}  // namespace

TEST_CASE("MakeSink builds file and stdout sinks") {
  config::SinkConfig c;
  c.type = config::SinkType::kStdout;
  CHECK(MakeSink(c).ok());
  c.type = config::SinkType::kFile;
  c.path = "/tmp/unused";
  CHECK(MakeSink(c).ok());
}

TEST_CASE("a file sink without a path refuses to open") {
  config::SinkConfig c;
  c.type = config::SinkType::kFile;
  auto sink = MakeSink(c);
  REQUIRE(sink.ok());
  CHECK((*sink)->Open().code() == base::Code::kInvalidArgument);
}

TEST_CASE("the stdout sink prints one aligned table per flush") {
  char* text = nullptr;
  size_t size = 0;
  std::FILE* out = open_memstream(&text, &size);
  {
    StdoutSink sink(out);
    REQUIRE(sink.Open().ok());
    CHECK(sink.Flush().ok());  // nothing buffered: nothing printed
    std::vector<window::WindowRow> rows = {MakeRow("59 ST", kJan6, kJan6 + 4 * 3600000, 120),
                                           MakeRow("A\nB", kJan6, kJan6 + 4 * 3600000, 7)};
    REQUIRE(sink.Write(rows).ok());
    REQUIRE(sink.Flush().ok());
  }
  std::fclose(out);
  const std::string printed(text, size);
  std::free(text);
  CHECK(printed ==
        "-------------------------------------------\n"
        "Batch: 0\n"
        "-------------------------------------------\n"
        "+-------+--------------------+--------------------+-------+-----+------+\n"
        "|station|window_start        |window_end          |entries|exits|events|\n"
        "+-------+--------------------+--------------------+-------+-----+------+\n"
        "|59 ST  |2024-01-06T00:00:00Z|2024-01-06T04:00:00Z|    120|  240|     3|\n"
        "|A\\x0AB |2024-01-06T00:00:00Z|2024-01-06T04:00:00Z|      7|   14|     3|\n"
        "+-------+--------------------+--------------------+-------+-----+------+\n"
        "\n");
}

TEST_CASE("the stdout sink keeps a batch given whole, and prints it in order with copied rows") {
  char* text = nullptr;
  size_t size = 0;
  std::FILE* out = open_memstream(&text, &size);
  {
    StdoutSink sink(out);
    auto first = std::make_shared<std::vector<window::WindowRow>>(
        std::vector<window::WindowRow>{MakeRow("A", kJan6, kJan6 + 4 * 3600000, 1)});
    std::vector<window::WindowRow> second = {MakeRow("BB", kJan6, kJan6 + 4 * 3600000, 22)};
    auto third = std::make_shared<std::vector<window::WindowRow>>(
        std::vector<window::WindowRow>{MakeRow("CCC", kJan6, kJan6 + 4 * 3600000, 333)});
    REQUIRE(sink.WriteBatch(first).ok());
    REQUIRE(sink.Write(second).ok());
    REQUIRE(sink.WriteBatch(std::make_shared<const std::vector<window::WindowRow>>()).ok());
    REQUIRE(sink.WriteBatch(third).ok());
    // The pool lets go of its batches once they are written, and Write()'s caller may reuse
    // its rows: the sink still has what it needs at Flush().
    first.reset();
    third.reset();
    second[0].station = "changed";
    REQUIRE(sink.Flush().ok());
    REQUIRE(sink.Flush().ok());  // nothing new: nothing printed
  }
  std::fclose(out);
  const std::string printed(text, size);
  std::free(text);
  CHECK(printed ==
        "-------------------------------------------\n"
        "Batch: 0\n"
        "-------------------------------------------\n"
        "+-------+--------------------+--------------------+-------+-----+------+\n"
        "|station|window_start        |window_end          |entries|exits|events|\n"
        "+-------+--------------------+--------------------+-------+-----+------+\n"
        "|A      |2024-01-06T00:00:00Z|2024-01-06T04:00:00Z|      1|    2|     3|\n"
        "|BB     |2024-01-06T00:00:00Z|2024-01-06T04:00:00Z|     22|   44|     3|\n"
        "|CCC    |2024-01-06T00:00:00Z|2024-01-06T04:00:00Z|    333|  666|     3|\n"
        "+-------+--------------------+--------------------+-------+-----+------+\n"
        "\n");
}

TEST_CASE("the stdout sink prints a batch larger than its write buffer as one aligned table") {
  constexpr int kRows = 30000;  // about 2.5 MiB of text: three pieces
  std::vector<window::WindowRow> rows;
  for (int i = 0; i < kRows; ++i) {
    rows.push_back(MakeRow(std::string("S").append(std::to_string(i)), kJan6 + int64_t{i} * 3600000,
                           kJan6 + int64_t{i + 4} * 3600000, i));
  }
  // The widest name comes last: every line before it is padded to its width, so the widths
  // are known before the first piece is written. Each 'ü' is one column in two bytes.
  rows.push_back(MakeRow("Zürich Hbf \x01 ü", kJan6, kJan6 + 4 * 3600000, 5));
  const std::vector<std::string> lines = PrintedLines(rows);
  REQUIRE(lines.size() == static_cast<size_t>(kRows) + 1 + 3 + 3 + 1 + 1);
  CHECK(lines[1] == "Batch: 0");
  const auto width = Columns(lines[3]);
  for (size_t i = 3; i + 1 < lines.size(); ++i) {
    INFO("line " << i << ": " << lines[i]);
    REQUIRE(Columns(lines[i]) == width);
  }
  CHECK(lines[6].rfind("|S0 ", 0) == 0);
  CHECK(lines[6 + 12345].rfind("|S12345 ", 0) == 0);
  CHECK(lines[6 + 12345].find("|2025-06-03T09:00:00Z|") != std::string::npos);
  CHECK(lines[6 + 12345].find("|  12345|") != std::string::npos);
  CHECK(lines[6 + kRows].rfind("|Zürich Hbf \\x01 ü|", 0) == 0);
  CHECK(lines.back().empty());
}

TEST_CASE("the stdout sink prints station names longer than its write buffer, escaped") {
  // 1.5 MiB of control characters, each printed as 4 bytes, 1 MiB of 2-byte UTF-8, and 8 MiB
  // of bytes that take no column (UTF-8 continuation bytes with no lead byte; the decoders let
  // none through, but the sink prints whatever it is handed): each line is several times the
  // 1 MiB buffer.
  const std::string controls(3 << 19, '\x01');
  std::string umlauts;
  for (int i = 0; i < (1 << 19); ++i) umlauts += "ü";
  const std::string no_columns(8 << 20, '\x80');
  const std::vector<std::string> lines =
      PrintedLines({MakeRow("A", kJan6, kJan6 + 4 * 3600000, 1),
                    MakeRow(controls, kJan6, kJan6 + 4 * 3600000, 2),
                    MakeRow(umlauts, kJan6, kJan6 + 4 * 3600000, 3)});
  REQUIRE(lines.size() == 3 + 3 + 3 + 1 + 1);
  for (size_t i = 3; i + 1 < lines.size(); ++i) {
    INFO("line " << i);
    CHECK(Columns(lines[i]) == Columns(lines[3]));
  }
  CHECK(Columns(lines[3]) == 1 + 4 * (3 << 19) + 1 + 20 + 1 + 20 + 1 + 7 + 1 + 5 + 1 + 6 + 1);
  std::string escaped;
  for (size_t i = 0; i < controls.size(); ++i) escaped += "\\x01";
  CHECK(lines[7] ==
        "|" + escaped + "|2024-01-06T00:00:00Z|2024-01-06T04:00:00Z|      2|    4|     3|");
  CHECK(lines[8].rfind("|" + umlauts + std::string(4 * (3 << 19) - (1 << 19), ' ') + "|", 0) == 0);
  CHECK(lines.back().empty());
  // Alone in its table, where the station column is 7 wide ("station").
  const std::vector<std::string> alone =
      PrintedLines({MakeRow(no_columns, kJan6, kJan6 + 4 * 3600000, 4)});
  REQUIRE(alone.size() == 3 + 3 + 1 + 1 + 1);
  CHECK(alone[6] == "|" + no_columns +
                        "       |2024-01-06T00:00:00Z|2024-01-06T04:00:00Z|      4|    8|     3|");
}

TEST_CASE("dead letter lines carry the reason, the source position and the raw bytes") {
  DeadLetterEntry e;
  e.reason = "late";
  e.topic = "turnstile-stream";
  e.partition = 3;
  e.offset = 1234;
  e.event_ms = kJan6 + 4 * 3600000;
  e.raw = "A002,R051,\"x\"";
  CHECK(FormatDeadLetter(e) ==
        "{\"reason\":\"late\",\"topic\":\"turnstile-stream\",\"partition\":3,\"offset\":1234,"
        "\"event_time\":\"2024-01-06T04:00:00Z\",\"raw\":\"A002,R051,\\\"x\\\"\","
        "\"raw_base64\":false}\n");
  e.event_ms = INT64_MIN;
  e.raw = std::string_view("\xFF\x00\x01", 3);
  CHECK(FormatDeadLetter(e) ==
        "{\"reason\":\"late\",\"topic\":\"turnstile-stream\",\"partition\":3,\"offset\":1234,"
        "\"raw\":\"/wAB\",\"raw_base64\":true}\n");
}

TEST_CASE("the file dead letter appends whole lines from many threads and survives reopening") {
  TempDir dir;
  config::DeadLetterConfig c;
  c.enabled = true;
  c.type = config::SinkType::kFile;
  c.path = dir.path() + "/dlq";
  for (int open = 0; open < 2; ++open) {
    auto dl = MakeDeadLetter(c);
    REQUIRE(dl.ok());
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 100; ++i) {
          DeadLetterEntry e;
          e.reason = "bad_field";
          e.partition = t;
          e.offset = i;
          e.raw = "some,raw,line";
          (*dl)->Write(e);
        }
      });
    }
    for (auto& th : threads) th.join();
    CHECK((*dl)->Flush().ok());
  }
  auto text = base::ReadWholeFile(c.path + "/dead-letter.jsonl");
  REQUIRE(text.ok());
  size_t lines = 0;
  for (size_t pos = 0; pos < text->size(); ++lines) {
    const size_t end = text->find('\n', pos);
    REQUIRE(end != std::string::npos);
    CHECK(text->substr(pos, 20) == "{\"reason\":\"bad_field");
    pos = end + 1;
  }
  CHECK(lines == 800);
}

TEST_CASE("a disabled dead letter discards") {
  config::DeadLetterConfig c;
  auto dl = MakeDeadLetter(c);
  REQUIRE(dl.ok());
  (*dl)->Write(DeadLetterEntry{});
  CHECK((*dl)->Flush().ok());
}

TEST_CASE("utf-8 validation and json escaping agree on what is valid") {
  CHECK(IsValidUtf8("plain"));
  CHECK(IsValidUtf8("\xC3\x89TOILE \xF0\x9F\x9A\x87"));
  CHECK_FALSE(IsValidUtf8("\xC0\x80"));      // overlong
  CHECK_FALSE(IsValidUtf8("\xED\xA0\x80"));  // surrogate
  CHECK_FALSE(IsValidUtf8("\xE2\x82"));      // cut
  std::string out;
  AppendJsonString(std::string_view("\x01\t\xC3\x89\xC3", 5), &out);
  CHECK(out == "\"\\u0001\\t\xC3\x89\\u00c3\"");
  out.clear();
  AppendBase64("ab", &out);
  AppendBase64("abc", &out);
  AppendBase64("a", &out);
  CHECK(out == "YWI=YWJjYQ==");
}

TEST_CASE("rows of different windows, one after another, each carry their own window bounds") {
  // The bounds' text is kept from row to row (a flush writes a window's rows together); it
  // must follow every change of window, including a start equal to the last row's end.
  const int64_t h4 = 4 * 3600 * 1000;
  const int64_t t0 = 1704513600000;  // 2024-01-06T04:00:00Z
  const std::vector<window::WindowRow> rows = {
      MakeRow("A", t0, t0 + h4), MakeRow("B", t0, t0 + h4), MakeRow("C", t0 + h4, t0 + 2 * h4),
      MakeRow("D", t0, t0 + h4), MakeRow("E", t0 + h4 + 500, t0 + 2 * h4)};
  std::string csv;
  for (const auto& r : rows) AppendCsvRow(r, &csv);
  CHECK(csv ==
        "A,2024-01-06T04:00:00Z,2024-01-06T08:00:00Z,1,2,3,true,2024-01-06T04:00:00Z,"
        "2024-01-06T07:59:59Z\n"
        "B,2024-01-06T04:00:00Z,2024-01-06T08:00:00Z,1,2,3,true,2024-01-06T04:00:00Z,"
        "2024-01-06T07:59:59Z\n"
        "C,2024-01-06T08:00:00Z,2024-01-06T12:00:00Z,1,2,3,true,2024-01-06T08:00:00Z,"
        "2024-01-06T11:59:59Z\n"
        "D,2024-01-06T04:00:00Z,2024-01-06T08:00:00Z,1,2,3,true,2024-01-06T04:00:00Z,"
        "2024-01-06T07:59:59Z\n"
        "E,2024-01-06T08:00:00.500Z,2024-01-06T12:00:00Z,1,2,3,true,2024-01-06T08:00:00.500Z,"
        "2024-01-06T11:59:59Z\n");
  std::string json;
  AppendJsonRow(rows[2], &json);
  AppendJsonRow(rows[3], &json);
  CHECK(json ==
        "{\"station\":\"C\",\"window_start\":\"2024-01-06T08:00:00Z\",\"window_end\":\"2024-01-"
        "06T12:00:00Z\",\"entries\":1,\"exits\":2,\"events\":3,\"final\":true,\"first_event\":"
        "\"2024-01-06T08:00:00Z\",\"last_event\":\"2024-01-06T11:59:59Z\"}\n"
        "{\"station\":\"D\",\"window_start\":\"2024-01-06T04:00:00Z\",\"window_end\":\"2024-01-"
        "06T08:00:00Z\",\"entries\":1,\"exits\":2,\"events\":3,\"final\":true,\"first_event\":"
        "\"2024-01-06T04:00:00Z\",\"last_event\":\"2024-01-06T07:59:59Z\"}\n");
}
