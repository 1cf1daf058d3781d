#include "sink/spare_files.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "sink/sink_test_util.h"
#include "sink/staged_file.h"

using namespace turnstiled;
using namespace turnstiled::sink;
using namespace turnstiled::sink::testing;
namespace fs = std::filesystem;

namespace {

// Waits (up to a minute: the machine may be busy) until `done` holds.
template <typename Done>
bool Eventually(Done done) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

std::set<std::string> Names(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

// A pid that no process has now: a child that has exited and been reaped.
pid_t GonePid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  return child;
}

}  // namespace

TEST_CASE("spares are made up to the target and again as they are taken; Stop removes the rest") {
  TempDir dir;
  SpareFiles spares(dir.path(), 0600, 4, "spare-test");
  spares.Start();
  REQUIRE(Eventually([&] { return spares.ready() == 4; }));
  std::set<std::string> names = Names(dir.path());
  REQUIRE(names.size() == 4);
  const std::string own = ".spare-" + std::to_string(::getpid()) + "-";
  for (const std::string& n : names) {
    CHECK(n.starts_with(own));
    CHECK(n.ends_with(".tmp"));
    CHECK(IsStagedTempName(n));
    CHECK_FALSE(IsAbandonedTempName(n));  // this process is alive
    struct stat st {};
    REQUIRE(::stat((dir.path() + "/" + n).c_str(), &st) == 0);
    CHECK(st.st_size == 0);
    CHECK((st.st_mode & 0777) == 0600);
  }

  auto taken = spares.Take();
  REQUIRE(taken.has_value());
  CHECK(names.count(fs::path(taken->path).filename().string()) == 1);
  const int fd = ::open(taken->path.c_str(), O_WRONLY);
  REQUIRE(fd >= 0);
  CHECK(::write(fd, "row\n", 4) == 4);
  ::close(fd);
  REQUIRE(Eventually([&] { return spares.made() == 5 && spares.ready() == 4; }));

  spares.Stop();
  CHECK(spares.ready() == 0);
  // The taken spare is the caller's; the four made for later are gone.
  CHECK(Names(dir.path()) == std::set<std::string>{fs::path(taken->path).filename().string()});
  spares.Stop();  // idempotent
}

TEST_CASE("a folder where no file can be made gives no spare, and Take() says so") {
  TempDir dir;
  SpareFiles spares(dir.path() + "/missing", 0600, 4, "spare-test");
  spares.Start();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK_FALSE(spares.Take().has_value());
  CHECK(spares.made() == 0);
  spares.Stop();
}

TEST_CASE("a spare of a process that is gone is abandoned; so is a staged file's temporary") {
  const std::string gone = std::to_string(GonePid());
  CHECK(IsAbandonedTempName(".spare-" + gone + "-7.tmp"));
  CHECK(IsAbandonedTempName(".part-" + gone + "-7.tmp"));
  const std::string alive = std::to_string(::getpid());
  CHECK_FALSE(IsAbandonedTempName(".spare-" + alive + "-7.tmp"));
  CHECK_FALSE(IsAbandonedTempName(".part-" + alive + "-7.tmp"));
  CHECK_FALSE(IsStagedTempName(".spare-1-7.csv"));
  CHECK_FALSE(IsStagedTempName("spare-1-7.tmp"));
}

TEST_CASE("while paused no spare is made; on resume the pool is filled again") {
  TempDir dir;
  SpareFiles spares(dir.path(), 0600, 3, "spare-test");
  spares.Start();
  REQUIRE(Eventually([&] { return spares.ready() == 3; }));
  std::vector<SpareFiles::Spare> taken;
  {
    SpareFiles::Paused outer(&spares);
    SpareFiles::Paused inner(&spares);  // pauses nest
    for (int i = 0; i < 3; ++i) {
      auto s = spares.Take();
      REQUIRE(s.has_value());
      taken.push_back(*s);
    }
    CHECK_FALSE(spares.Take().has_value());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK(spares.made() == 3);
  }
  REQUIRE(Eventually([&] { return spares.ready() == 3; }));
  CHECK(spares.made() == 6);
  spares.Stop();
  CHECK(Names(dir.path()).size() == 3);  // the three taken are the caller's
}
