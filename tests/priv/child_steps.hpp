// Privileged tests run their steps in a forked child (own namespaces, own mounts),
// which exits with the number of the first step that failed.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>

namespace {

int in_child(const std::function<int()>& fn) {
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    alarm(120);
    _exit(fn());
  }
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

[[maybe_unused]] int step_failed(int code, const char* what) {
  std::fprintf(stderr, "step %d failed: %s (errno %d %s)\n", code, what, errno, strerrordesc_np(errno));
  return code;
}

#define STEP(code, cond)                          \
  do {                                            \
    if (!(cond)) return step_failed(code, #cond); \
  } while (0)

}  // namespace
