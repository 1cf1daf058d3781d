// turnstiled_bench_timed: runs a command and reports what it cost, for bench/run.sh.
//
//   turnstiled_bench_timed OUT_FILE COMMAND [ARG]...
//
// Runs COMMAND with the caller's stdin, stdout and stderr, waits for it, and writes one line
// to OUT_FILE:
//   rc=N wall=S user=S sys=S maxrss_kb=K
// user and sys are the CPU seconds of COMMAND and every child it waited for (wait4 rusage), so
// a multi-threaded daemon's figure covers all its threads. Exits with COMMAND's status.
// GNU time would do the same, but is not installed everywhere.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

namespace {

double Seconds(const timeval& tv) {
  return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s OUT_FILE COMMAND [ARG]...\n", argv[0]);
    return 2;
  }
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = fork();
  if (pid < 0) {
    std::perror("fork");
    return 2;
  }
  if (pid == 0) {
    execvp(argv[2], argv + 2);
    std::perror(argv[2]);
    _exit(127);
  }
  int status = 0;
  rusage usage{};
  while (wait4(pid, &status, 0, &usage) < 0) {
  }
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::FILE* out = std::fopen(argv[1], "w");
  if (out == nullptr) {
    std::perror(argv[1]);
    return 2;
  }
  std::fprintf(out, "rc=%d wall=%.6f user=%.6f sys=%.6f maxrss_kb=%ld\n", rc, wall,
               Seconds(usage.ru_utime), Seconds(usage.ru_stime), usage.ru_maxrss);
  std::fclose(out);
  return rc;
}
