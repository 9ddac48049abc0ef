#include <doctest/doctest.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "pod/idmap/userns.hpp"

using namespace pod::idmap;

namespace {

// Runs fn in a forked child as an unprivileged uid; the child's exit code is fn's.
int in_child_as(uid_t uid, gid_t gid, int (*fn)(uid_t, gid_t)) {
  pid_t pid = fork();
  if (pid == 0) {
    if (geteuid() == 0 && (setgroups(0, nullptr) != 0 || setresgid(gid, gid, gid) != 0 || setresuid(uid, uid, uid) != 0))
      _exit(90);
    // Changing credentials made us non-dumpable, which makes /proc/self root's; a user's
    // own process is dumpable.
    prctl(PR_SET_DUMPABLE, 1);
    _exit(fn(uid, gid));
  }
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

std::string slurp(const char* path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

int single_id_namespace(uid_t uid, gid_t gid) {
  StoreMapping m;
  m.uids.extents.push_back({0, static_cast<std::uint32_t>(uid), 1});
  m.gids.extents.push_back({0, static_cast<std::uint32_t>(gid), 1});
  if (auto r = enter_user_namespace(m); !r) {
    fprintf(stderr, "%s\n", r.error().what().c_str());
    return 1;
  }
  if (getuid() != 0 || getgid() != 0) return 2;
  std::string want = "         0      " + std::to_string(uid) + "          1\n";
  if (slurp("/proc/self/uid_map") != want) return 3;
  if (slurp("/proc/self/setgroups") != "deny\n") return 4;
  return 0;
}

}  // namespace

TEST_SUITE("needs:userns") {
  TEST_CASE("an unprivileged process enters a namespace mapping its own id to 0") {
    uid_t uid = geteuid() == 0 ? 65534 : geteuid();
    gid_t gid = geteuid() == 0 ? 65534 : getegid();
    CHECK(in_child_as(uid, gid, single_id_namespace) == 0);
  }
}
