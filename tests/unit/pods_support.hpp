// Shared by the pods tests: a temporary store, records to put in it, pod directories
// made by hand (not with PodDir, so the state code is checked against plain syscalls),
// and a child process that holds a pod's lock.
#pragma once

#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <string>

#include "pod/runtime/pods.hpp"
#include "sys_support.hpp"

namespace pod::runtime::test {

using sys::test::TempDir;

inline PodRecord sample_record(const std::string& uuid, const std::string& name) {
  PodRecord r;
  r.uuid = uuid;
  r.name = name;
  r.hostname = name;
  r.created = "2025-01-02T03:04:05Z";
  AppRecord a;
  a.app.name = "main";
  a.app.argv = {"/bin/sh", "-c", "echo hi"};
  a.app.env = {"PATH=/usr/bin:/bin", "HOME=/root"};
  a.app.workdir = "/srv";
  a.app.uid = 1000;
  a.app.gid = 1000;
  a.app.groups = {10, 20};
  a.app.security.caps = {0 /* CAP_CHOWN */, 7 /* CAP_SETUID */};
  a.app.security.rlimits = {{RLIMIT_NOFILE, 1024, 4096}};
  a.app.security.oom_score_adj = 100;
  a.image = "busybox:latest";
  a.image_digest = "sha256:" + std::string(64, 'a');
  r.apps.push_back(a);
  r.uids.extents = {{0, 100000, 65536}};
  r.gids.extents = {{0, 100000, 65536}};
  r.userns = "auto";
  r.lease = "pod-" + name;
  r.shift = "chown";
  r.shift_keys = {std::string(32, 'b')};
  return r;
}

// STORE/pods/<uuid> with pod.json and an (unlocked) lock file, made with plain calls.
inline std::string make_pod_dir(const TempDir& store, const PodRecord& r) {
  std::string pods = store / "pods";
  ::mkdir(pods.c_str(), 0700);
  std::string dir = pods + "/" + r.uuid;
  sys::test::put_dir(dir, 0700);
  sys::test::put_file(dir + "/pod.json", record_to_json(r));
  sys::test::put_file(dir + "/lock", "", 0600);
  sys::test::put_dir(dir + "/upper");
  sys::test::put_file(dir + "/upper/file", "data");
  return dir;
}

// Sets the mtime of a file `seconds` in the past.
inline void age_file(const std::string& path, long seconds) {
  struct timespec ts[2];
  ::clock_gettime(CLOCK_REALTIME, &ts[0]);
  ts[0].tv_sec -= seconds;
  ts[1] = ts[0];
  REQUIRE(::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW) == 0);
}

// A forked child that takes the lock of `pod_dir` and sleeps until killed (optionally
// ignoring SIGTERM), as a pod's init does. Killed and reaped at the end of the scope.
struct LockHolder {
  pid_t pid = -1;
  explicit LockHolder(const std::string& pod_dir, bool ignore_term = false) {
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      // Not the test framework's handlers: this child dies as an init would.
      for (int sig : {SIGTERM, SIGINT, SIGSEGV, SIGABRT}) ::signal(sig, SIG_DFL);
      if (ignore_term) ::signal(SIGTERM, SIG_IGN);
      int fd = ::open((pod_dir + "/lock").c_str(), O_RDWR | O_CLOEXEC);
      char ok = (fd >= 0 && ::flock(fd, LOCK_EX) == 0) ? 'y' : 'n';
      if (::write(p[1], &ok, 1) != 1) _exit(1);
      for (;;) ::pause();
    }
    ::close(p[1]);
    char ok = 0;
    REQUIRE(::read(p[0], &ok, 1) == 1);
    ::close(p[0]);
    REQUIRE(ok == 'y');
  }
  // The status it ended with (reaps it).
  int reap() {
    int st = 0;
    REQUIRE(::waitpid(pid, &st, 0) == pid);
    pid = -1;
    return st;
  }
  ~LockHolder() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
  LockHolder(const LockHolder&) = delete;
  LockHolder& operator=(const LockHolder&) = delete;
};

inline sys::Fd open_store(const TempDir& store) { return sys::test::open_path(store.path); }

// Releasers that count their calls per pod uuid.
struct CountingReleasers {
  std::map<std::string, int> lease, shifted;
  bool fail_lease = false;
  Releasers get() {
    return {[this](const PodRecord& r) -> sys::Result<void> {
              if (fail_lease) return sys::make_error(EIO, "ledger unavailable");
              ++lease[r.uuid];
              return {};
            },
            [this](const PodRecord& r) -> sys::Result<void> {
              ++shifted[r.uuid];
              return {};
            }};
  }
};

}  // namespace pod::runtime::test
