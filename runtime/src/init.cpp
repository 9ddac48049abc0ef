// The pod init: PID 1 of the pod. It takes the caller's mounts, makes the pod's host
// name and loopback, forks each app (which sets up its own mount namespace and root,
// see mounts.hpp), seals its own root, reports the apps' pids, then reaps every child
// and forwards SIGTERM/SIGINT/SIGHUP until all apps have exited.
// The init keeps the caller's ids (not root of the pod's namespace): status.json is
// written into the pod directory as its owner, and nothing in the pod shares its uid.
#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <initializer_list>

#include "init.hpp"

namespace pod::runtime::detail {

namespace {

[[noreturn]] void fail_pod(InitState& s, int app, int step, int err, int code = kSetupFailedExit) noexcept {
  Msg m;
  m.kind = kMsgFailed;
  m.app = app;
  m.step = step;
  m.err = err;
  (void)send_msg(s.sock, m, -1, nullptr);
  // Started apps go with us: the pid namespace ends when its init does.
  ::_exit(code);
}

int loopback_up() noexcept {
  int sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) return -1;
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  int rc = ::ioctl(sock, SIOCGIFFLAGS, &ifr);
  if (rc == 0) {
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    rc = ::ioctl(sock, SIOCSIFFLAGS, &ifr);
  }
  int e = errno;
  ::close(sock);
  errno = e;
  return rc;
}

// A pty of the pod's own devpts: the master goes to the caller, the slave is the app's
// controlling terminal and stdio.
int setup_tty(int sock, int* err) noexcept {
  int master = ::open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  int unlock = 0;
  if (master < 0 || ::ioctl(master, TIOCSPTLCK, &unlock) != 0) return *err = errno, kStepTty;
  int slave = ::ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
  if (slave < 0) return *err = errno, kStepTty;
  Msg m;
  m.kind = kMsgPty;
  m.app = 0;
  if (!send_msg(sock, m, master, nullptr)) return *err = errno, kStepSync;
  ::close(master);
  for (int i = 0; i < 3; ++i)
    if (::dup2(slave, i) < 0) return *err = errno, kStepTty;
  if (slave > 2) ::close(slave);
  if (::ioctl(0, TIOCSCTTY, 0) != 0) return *err = errno, kStepTty;
  return 0;
}

[[noreturn]] void app_main(InitState& s, std::size_t i, int report) noexcept {
  reset_signals();
  // Our own mount namespace, and our root's mount point in it, opened with the caller's
  // ids still ours (open_root_point says why).
  if (::unshare(CLONE_NEWNS) != 0) report_and_exit(report, kStepMountNs, errno);
  if (::mount("", "/", nullptr, MS_SLAVE | MS_REC, nullptr) != 0) report_and_exit(report, kStepPropagation, errno);
  int err = 0;
  int point = open_root_point(s.root, &err);
  if (point < 0) report_and_exit(report, kStepRootfs, err);
  // Root of the pod's user namespace: files it creates (mount points) are the pod's.
  if (::setresgid(0, 0, 0) != 0) report_and_exit(report, kStepIds, errno);
  if (::setresuid(0, 0, 0) != 0) report_and_exit(report, kStepIds, errno);
  (void)::setgroups(0, nullptr);  // EPERM where setgroups is denied: nothing to drop then
  PreparedApp& app = s.apps[i];
  AppRoot root = app.root;
  for (int k = 0; k < kEtcCount; ++k) root.etc[k] = app.etc[k];
  if (int step = setup_root(s.root, root, point, &err)) report_and_exit(report, step, err);
  ::close(point);
  (void)::setsid();
  if (s.tty && i == 0)
    if (int step = setup_tty(s.sock, &err)) report_and_exit(report, step, err);
  // Set up: say so, and wait at the gate (its read gives 0 once the init closes it).
  StepError ready{kStepNone, 0};
  if (::write(report, &ready, sizeof ready) != static_cast<ssize_t>(sizeof ready)) ::_exit(kSetupFailedExit);
  char c;
  while (::read(s.gate[0], &c, 1) < 0 && errno == EINTR) {
  }
  ::close(s.gate[0]);
  become_and_exec(app, report);
}

void close_app_fds(PreparedApp& app) noexcept {
  if (app.root.rootfs >= 0) ::close(app.root.rootfs);
  app.root.rootfs = -1;
  for (int& fd : app.etc)
    if (fd >= 0) ::close(std::exchange(fd, -1));
  for (std::size_t v = 0; v < app.root.nvolumes; ++v) ::close(app.root.volumes[v].fd);
}

ssize_t read_report(int fd, StepError* e) noexcept {
  ssize_t n;
  do n = ::read(fd, e, sizeof *e);
  while (n < 0 && errno == EINTR);
  return n;
}

void write_status(InitState& s, int code) noexcept {
  if (s.pod_dir < 0) return;
  char* b = s.status_buf.data();
  const std::size_t cap = s.status_buf.size();
  std::size_t n = 0;
  auto put = [&](int w) {
    if (w > 0) n = std::min(cap - 1, n + static_cast<std::size_t>(w));
  };
  put(std::snprintf(b, cap, "{\"exit\": %d, \"apps\": [", code));
  for (std::size_t i = 0; i < s.apps.size(); ++i)
    put(std::snprintf(b + n, cap - n, "%s{\"name\": \"%s\", \"exit\": %d, \"signal\": %d}", i ? ", " : "",
                      s.apps[i].name.c_str(), s.codes[i], s.signals[i]));
  put(std::snprintf(b + n, cap - n, "]}\n"));
  int fd = ::openat(s.pod_dir, "status.json.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return;
  // Atomic for readers, not synced: `pod run` waits on this, and a crash ends the pod
  // anyway (gc then finds it exited without a status).
  bool ok = ::write(fd, b, n) == static_cast<ssize_t>(n);
  ::close(fd);
  if (ok) ::renameat(s.pod_dir, "status.json.tmp", s.pod_dir, "status.json");
}

}  // namespace

void init_main(InitState& s) noexcept {
  ::close(s.caller_sock);
  if (s.die_with_caller) ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  // Into the pod's cgroup v1 cgroups before anything else: "0" moves the writer, a
  // single thread, which the kernel does without the grace period a move by pid costs.
  // (The files were opened by the caller: their opener's credentials are checked.)
  for (int fd : s.cgroup_tasks) {
    if (::write(fd, "0", 1) != 1) fail_pod(s, -1, kStepCgroupMove, errno);
    ::close(fd);
  }
  if (s.join_netns >= 0) {
    if (::setns(s.join_netns, CLONE_NEWNET) != 0) fail_pod(s, -1, kStepNetJoin, errno);
    ::close(s.join_netns);
  }
  // Made here while the caller composes the root filesystems: some 0.4 ms of the
  // kernel's that clone3 would have spent before either could begin.
  if (s.make_netns && ::unshare(CLONE_NEWNET) != 0) fail_pod(s, -1, kStepNetNew, errno);
  std::size_t nvol = 0;
  for (;;) {
    Msg m;
    int fd = -1;
    long n = recv_msg(s.sock, &m, &fd, nullptr);
    if (n == 0) ::_exit(kSetupFailedExit);  // the caller is gone (also closes the death-signal race)
    if (n < 0) fail_pod(s, -1, kStepSync, errno);
    if (m.kind == kMsgGo) break;
    if (m.app < 0 || static_cast<std::size_t>(m.app) >= s.apps.size() || fd < 0) fail_pod(s, -1, kStepSync, EPROTO);
    PreparedApp& app = s.apps[static_cast<std::size_t>(m.app)];
    if (m.kind == kMsgRootfs) {
      app.root.rootfs = fd;
    } else if (m.kind == kMsgVolume && nvol < kMaxVolumes) {
      char* target = s.volume_targets.get() + nvol * PATH_MAX;
      std::memcpy(target, m.path, PATH_MAX);
      target[PATH_MAX - 1] = 0;
      s.volumes[nvol] = AppVolume{fd, (m.flags & kVolumeDirectory) != 0, target};
      if (app.root.nvolumes == 0) app.root.volumes = &s.volumes[nvol];
      ++app.root.nvolumes;
      ++nvol;
    } else {
      fail_pod(s, -1, kStepSync, EPROTO);
    }
  }
  // Nothing in the pod may ptrace us or open /proc/1/{fd,exe,root}: the host's pod
  // binary and its descriptors must stay out of reach. (Only after "go": until then no
  // process of the pod exists, and the caller's network hook opens /proc/PID/ns/net,
  // which a non-dumpable init would refuse to a caller without CAP_SYS_PTRACE.)
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

  // Now in the pod's cgroup (cloned into it, or moved itself at the start): the pod's
  // cgroup namespace is rooted at it. Made at clone time it would be rooted at the
  // caller's cgroup on a cgroup v1 host.
  if (::unshare(CLONE_NEWCGROUP) != 0) fail_pod(s, -1, kStepCgroupNs, errno);
  for (int i = 0; i < 3; ++i)
    if (s.stdio[i] >= 0 && ::dup2(s.stdio[i], i) < 0) fail_pod(s, -1, kStepStdio, errno);
  std::size_t nkeep = 0;
  for (int fd : {0, 1, 2, s.sock, s.pod_dir, s.lock_fd}) s.keep[nkeep++] = fd;
  for (auto& app : s.apps) {
    s.keep[nkeep++] = app.root.rootfs;
    for (int fd : app.etc) s.keep[nkeep++] = fd;
  }
  for (std::size_t v = 0; v < nvol; ++v) s.keep[nkeep++] = s.volumes[v].fd;
  // The caller's other descriptors (store locks, terminals) are not the pod's to hold.
  sys::close_all_except(s.keep.data(), nkeep);

  if (::mount("", "/", nullptr, MS_SLAVE | MS_REC, nullptr) != 0) fail_pod(s, -1, kStepPropagation, errno);
  if (::sethostname(s.hostname.data(), s.hostname.size()) != 0) fail_pod(s, -1, kStepHostname, errno);
  if (s.own_net && loopback_up() != 0) fail_pod(s, -1, kStepLoopback, errno);

  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) sigaddset(&set, sig);
  ::sigprocmask(SIG_BLOCK, &set, nullptr);

  // The apps one after the other, each up to the gate; then the caller's limits and
  // network; then the gate opens and each app execs (its report pipe closes) or reports
  // why not.
  if (::pipe2(s.gate, O_CLOEXEC) != 0) fail_pod(s, -1, kStepFork, errno);
  for (std::size_t i = 0; i < s.apps.size(); ++i) {
    int rep[2];
    if (::pipe2(rep, O_CLOEXEC) != 0) fail_pod(s, static_cast<int>(i), kStepFork, errno);
    pid_t pid = ::fork();
    if (pid < 0) fail_pod(s, static_cast<int>(i), kStepFork, errno);
    if (pid == 0) {
      ::close(rep[0]);
      ::close(s.gate[1]);
      app_main(s, i, rep[1]);
    }
    ::close(rep[1]);
    close_app_fds(s.apps[i]);
    s.pids[i] = pid;
    s.reports[i] = rep[0];
    StepError e;
    ssize_t n = read_report(rep[0], &e);
    if (n != sizeof e) fail_pod(s, static_cast<int>(i), kStepSync, EPIPE);  // ended without a word
    if (e.step != kStepNone) fail_pod(s, static_cast<int>(i), e.step, e.err);
  }
  ::close(s.gate[0]);
  if (s.await_caller) {
    Msg m;
    int fd = -1;
    long n = recv_msg(s.sock, &m, &fd, nullptr);
    if (n == 0) ::_exit(kSetupFailedExit);  // the caller is gone
    if (n < 0) fail_pod(s, -1, kStepSync, errno);
    if (fd >= 0) ::close(fd);
    if (m.kind != kMsgAppsGo) fail_pod(s, -1, kStepSync, EPROTO);
  }
  ::close(s.gate[1]);
  for (std::size_t i = 0; i < s.apps.size(); ++i) {
    StepError e;
    ssize_t n = read_report(s.reports[i], &e);
    ::close(s.reports[i]);
    if (n == sizeof e)
      fail_pod(s, static_cast<int>(i), e.step, e.err,
               e.step == kStepExec ? (e.err == ENOENT ? 127 : 126) : kSetupFailedExit);
  }
  int err = 0;
  if (int step = seal_init_root(s.root, &err)) fail_pod(s, -1, step, err);

  for (std::size_t i = 0; i < s.apps.size(); ++i) {
    Msg m;
    m.kind = kMsgStarted;
    m.app = static_cast<int>(i);
    // The kernel translates this pid into the caller's pid namespace.
    ucred cred{s.pids[i], ::getuid(), ::getgid()};
    (void)send_msg(s.sock, m, -1, &cred);
  }
  Msg ready;
  ready.kind = kMsgReady;
  (void)send_msg(s.sock, ready, -1, nullptr);
  ::close(s.sock);

  std::size_t live = s.apps.size();
  while (live > 0) {
    siginfo_t si{};
    int sig = ::sigwaitinfo(&set, &si);
    if (sig < 0) continue;
    if (sig != SIGCHLD) {
      for (std::size_t i = 0; i < s.apps.size(); ++i)
        if (!s.done[i]) ::kill(s.pids[i], sig);
      continue;
    }
    // Every zombie: the apps and whatever was re-parented to us.
    for (;;) {
      int st = 0;
      pid_t p = ::waitpid(-1, &st, WNOHANG);
      if (p <= 0) break;
      for (std::size_t i = 0; i < s.apps.size(); ++i) {
        if (s.pids[i] != p || s.done[i]) continue;
        s.done[i] = 1;
        --live;
        if (WIFSIGNALED(st))
          s.signals[i] = WTERMSIG(st);
        else
          s.codes[i] = WEXITSTATUS(st);
      }
    }
  }
  int code = 0;
  for (std::size_t i = 0; i < s.apps.size() && code == 0; ++i)
    code = s.signals[i] ? 128 + s.signals[i] : s.codes[i];
  write_status(s, code);
  ::_exit(code);
}

}  // namespace pod::runtime::detail
