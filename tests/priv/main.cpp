// Privileged tests: `pod_priv_tests --need=NAME` runs the suite "needs:NAME" when this
// machine meets the need, and otherwise prints why and exits 77 (CTest: skipped), or
// 1 when POD_TESTS_MUST_RUN=1 (CI), where a skip must not pass unnoticed.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

// Empty string: met; otherwise the reason it is not.
std::string probe(const std::string& need) {
  if (need == "root") return geteuid() == 0 ? "" : "not running as root";
  if (need == "userns") {
    pid_t pid = fork();
    if (pid == 0) _exit(unshare(CLONE_NEWUSER) == 0 ? 0 : 1);
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "" : "unprivileged user namespaces are not allowed";
  }
  return "unknown need '" + need + "'";
}

}  // namespace

int main(int argc, char** argv) {
  std::string need;
  for (int i = 1; i < argc; ++i)
    if (std::strncmp(argv[i], "--need=", 7) == 0) need = argv[i] + 7;
  doctest::Context ctx;
  ctx.applyCommandLine(argc, argv);
  if (!need.empty()) {
    if (std::string why = probe(need); !why.empty()) {
      bool must = std::getenv("POD_TESTS_MUST_RUN") && std::string(std::getenv("POD_TESTS_MUST_RUN")) == "1";
      std::fprintf(stderr, "needs:%s not met: %s%s\n", need.c_str(), why.c_str(),
                   must ? " (POD_TESTS_MUST_RUN=1: failing)" : "; skipped");
      return must ? 1 : 77;
    }
    ctx.addFilter("test-suite", ("needs:" + need).c_str());
  }
  return ctx.run();
}
