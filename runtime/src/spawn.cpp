// start(): the caller's side of the pod's birth. Everything the init and the apps need
// is prepared here before clone3; then the maps are written, the caller's prepare()
// makes the mounts for the new user namespace, and they go to the init with "go". The
// cgroup limits and the network are set up while the apps make their roots; the apps
// exec once they are.
#include "pod/runtime/spawn.hpp"

#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <optional>

#include <fmt/ranges.h>

#include "init.hpp"
#include "pod/idmap/namespace.hpp"
#include "pod/sys/fs.hpp"

namespace pod::runtime {

using detail::InitState;
using detail::Msg;

namespace {

// Kills and reaps the init unless the pod started.
struct InitGuard {
  pid_t pid = -1;
  int pidfd = -1;
  bool armed = true;
  sys::ExitStatus reap() {
    siginfo_t si{};
    while (::waitid(P_PIDFD, static_cast<id_t>(pidfd), &si, WEXITED) != 0 && errno == EINTR) {
    }
    armed = false;
    sys::ExitStatus st;
    if (si.si_code == CLD_EXITED) st.code = si.si_status;
    else st.signal = si.si_status;
    return st;
  }
  ~InitGuard() {
    if (!armed) return;
    ::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
    (void)reap();
  }
};

// The same directory, opened through our mount namespace: an fd opened before the
// caller unshared its mount namespace names the old namespace's mount, which open_tree
// refuses to clone (EINVAL).
sys::Result<sys::Fd> reopen_here(sys::Fd dir) {
  std::string path = POD_TRY(sys::fd_path(dir));
  struct stat want = POD_TRY(sys::stat_fd(dir));
  sys::Fd here(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!here) return sys::sys_error("open '{}'", path);
  struct stat got = POD_TRY(sys::stat_fd(here));
  if (got.st_dev != want.st_dev || got.st_ino != want.st_ino)
    return sys::make_error(ESTALE, "'{}' is not the directory it was", path);
  return here;
}

bool id_mapped(const idmap::IdMap& m, std::uint32_t id) {
  for (const auto& e : m.extents)
    if (id >= e.inner && id - e.inner < e.count) return true;
  return false;
}

// gid 5 (tty) for devpts: in the pod's new map, or in our own namespace's.
bool tty_gid_mapped(const PodSpec& spec) {
  if (spec.new_userns) return id_mapped(spec.gids, 5);
  auto text = sys::read_file(sys::FdRef::cwd(), "/proc/self/gid_map", 1 << 16);
  if (!text) return false;
  unsigned long inner = 0, outer = 0, count = 0;
  for (const char* p = text->c_str(); std::sscanf(p, "%lu %lu %lu", &inner, &outer, &count) == 3;) {
    if (5 >= inner && 5 - inner < count) return true;
    p = std::strchr(p, '\n');
    if (!p) break;
    ++p;
  }
  return false;
}

sys::Result<int> dup_cloexec(int fd) {
  if (fd < 0) return -1;
  int d = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (d < 0) return sys::sys_error("dup");
  return d;
}

sys::Result<std::uint64_t> start_time_of(pid_t pid) {
  std::string stat = POD_TRY(sys::read_file(sys::FdRef::cwd(), fmt::format("/proc/{}/stat", pid), 4096));
  auto close = stat.rfind(')');
  if (close == std::string::npos) return sys::make_error(EINVAL, "/proc/{}/stat is malformed", pid);
  // Fields after "pid (comm)" start at 3; the start time is field 22.
  const char* p = stat.c_str() + close + 1;
  for (int field = 3; field < 22; ++field) {
    p = std::strchr(p + 1, ' ');
    if (!p) return sys::make_error(EINVAL, "/proc/{}/stat is short", pid);
  }
  return std::strtoull(p + 1, nullptr, 10);
}

// pod_dir/etc/NAME with the pod's copy of an /etc file, and one detached bind of it
// per app.
sys::Result<void> etc_files(const PodSpec& spec, InitState& s, std::vector<sys::Fd>& owned) {
  if (spec.pod_dir.get() < 0) return {};
  POD_TRY(sys::ensure_dir(spec.pod_dir, "etc", 0755));
  sys::Fd etc = POD_TRY(reopen_here(POD_TRY(sys::open_dir(spec.pod_dir, "etc"))));
  const std::string contents[detail::kEtcCount] = {spec.hostname + "\n", spec.etc_hosts, spec.etc_resolv_conf};
  const char* names[detail::kEtcCount] = {"hostname", "hosts", "resolv.conf"};
  for (int k = 0; k < detail::kEtcCount; ++k) {
    if (contents[k].empty() || contents[k] == "\n") continue;
    POD_TRY_CTX(sys::write_file_atomic(etc, names[k], contents[k], 0644, sys::Sync::no), "writing the pod's /etc/{}", names[k]);
    for (auto& app : s.apps) {
      int fd = ::open_tree(etc.get(), names[k], OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
      if (fd < 0) return sys::sys_error("a bind mount of the pod's /etc/{}", names[k]);
      owned.emplace_back(fd);
      app.etc[k] = fd;
    }
  }
  return {};
}

bool send(int sock, const Msg& m, int fd) { return detail::send_msg(sock, m, fd, nullptr); }

// Sends each app's root filesystem and volumes to the init.
sys::Result<void> send_mounts(int sock, std::vector<AppMounts> mounts, std::size_t napps) {
  if (mounts.size() != napps)
    return sys::make_error(EINVAL, "prepared {} root filesystems for {} apps", mounts.size(), napps);
  std::size_t nvol = 0;
  for (std::size_t i = 0; i < mounts.size(); ++i) {
    // Sent as they are, not cloned: the last close of a detached mount takes it down,
    // which waits for an RCU grace period (0.6 ms here) before the init could go on.
    sys::Fd root = std::move(mounts[i].rootfs);
    Msg m;
    m.kind = detail::kMsgRootfs;
    m.app = static_cast<int>(i);
    if (!send(sock, m, root.get())) return sys::sys_error("sending the root filesystem to the pod");
    for (auto& v : mounts[i].volumes) {
      if (++nvol > detail::kMaxVolumes)
        return sys::make_error(E2BIG, "more than {} volumes in one pod", detail::kMaxVolumes);
      if (!v.target.starts_with('/') || v.target.size() >= sizeof m.path)
        return sys::make_error(EINVAL, "volume target '{}' is not an absolute path", v.target);
      sys::Fd src = std::move(v.source);
      if (v.read_only) {
        mount_attr a{};
        a.attr_set = MOUNT_ATTR_RDONLY;
        if (::mount_setattr(src.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof a) != 0)
          return sys::sys_error("making volume '{}' read-only", v.target);
      }
      Msg vm;
      vm.kind = detail::kMsgVolume;
      vm.app = static_cast<int>(i);
      vm.flags = v.directory ? detail::kVolumeDirectory : 0;
      std::memcpy(vm.path, v.target.c_str(), v.target.size() + 1);
      if (!send(sock, vm, src.get())) return sys::sys_error("sending volume '{}' to the pod", v.target);
    }
  }
  Msg go;
  go.kind = detail::kMsgGo;
  if (!send(sock, go, -1)) return sys::sys_error("telling the pod to go on");
  return {};
}

}  // namespace

sys::Result<RunningPod> start(const PodSpec& spec, const PrepareMounts& prepare) {
  if (spec.apps.empty()) return sys::make_error(EINVAL, "a pod needs at least one app");
  if (spec.rootfs_dir.get() < 0) return sys::make_error(EINVAL, "no rootfs mount point");
  InitState s;
  for (const auto& app : spec.apps) s.apps.push_back(POD_TRY(detail::prepare_app(app)));
  s.hostname = spec.hostname;
  std::string rootfs_path = POD_TRY(sys::fd_path(spec.rootfs_dir));
  struct stat st = POD_TRY(sys::stat_fd(spec.rootfs_dir));
  s.root.rootfs_path = rootfs_path.c_str();
  s.root.rootfs_dev = st.st_dev;
  s.root.rootfs_ino = st.st_ino;
  s.root.own_net = spec.net != NetMode::host;
  s.root.devpts_gid = tty_gid_mapped(spec);
  s.own_net = s.root.own_net;
  s.await_caller = spec.network || spec.limits;
  s.tty = spec.tty;
  s.die_with_caller = spec.die_with_caller;
  if (spec.cgroup_v1_mounts.size() > detail::kMaxCgroupMounts)
    return sys::make_error(E2BIG, "more than {} cgroup v1 hierarchies", detail::kMaxCgroupMounts);
  s.cgroup_controllers = spec.cgroup_v1_mounts;
  for (const auto& ctrls : s.cgroup_controllers) {
    if (ctrls.empty() || ctrls.size() > 4) return sys::make_error(EINVAL, "a cgroup v1 hierarchy of {} controllers", ctrls.size());
    s.cgroup_dirs.push_back(fmt::format("{}", fmt::join(ctrls, ",")));
  }
  s.cgroup_mounts.resize(s.cgroup_controllers.size());
  for (std::size_t i = 0; i < s.cgroup_mounts.size(); ++i) {
    s.cgroup_mounts[i].dir = s.cgroup_dirs[i].c_str();
    for (std::size_t k = 0; k < s.cgroup_controllers[i].size(); ++k) s.cgroup_mounts[i].opts[2 * k] = s.cgroup_controllers[i][k].c_str();
  }
  s.root.cgroup_v1 = s.cgroup_mounts.data();
  s.root.ncgroup_v1 = s.cgroup_mounts.size();

  // A network namespace made beforehand is joined by the init (clone3 cannot join one,
  // and we could not come back from it: ours belongs to a user namespace above ours).
  const bool made_netns = spec.net != NetMode::host && spec.netns_fd >= 0;
  std::vector<sys::Fd> owned;  // our copies of what the init inherits
  POD_TRY(etc_files(spec, s, owned));
  s.pod_dir = POD_TRY(dup_cloexec(spec.pod_dir.get()));
  owned.emplace_back(s.pod_dir);
  s.lock_fd = POD_TRY(dup_cloexec(spec.lock_fd));
  owned.emplace_back(s.lock_fd);
  if (made_netns) {
    s.join_netns = POD_TRY(dup_cloexec(spec.netns_fd));
    owned.emplace_back(s.join_netns);
  }
  for (int t : spec.cgroup_v1_tasks) {
    s.cgroup_tasks.push_back(POD_TRY(dup_cloexec(t)));
    owned.emplace_back(s.cgroup_tasks.back());
  }
  const int stdio[3] = {spec.stdin_fd, spec.stdout_fd, spec.stderr_fd};
  for (int i = 0; i < 3; ++i) {
    s.stdio[i] = POD_TRY(dup_cloexec(stdio[i]));  // above 2, so dup2 onto 0-2 cannot clobber
    owned.emplace_back(s.stdio[i]);
  }
  const std::size_t n = s.apps.size();
  s.volumes.resize(detail::kMaxVolumes);
  s.volume_targets.reset(new char[detail::kMaxVolumes * PATH_MAX]);
  s.keep.resize(6 + n * (1 + detail::kEtcCount) + detail::kMaxVolumes);
  s.pids.assign(n, 0);
  s.reports.assign(n, -1);
  s.codes.assign(n, 0);
  s.signals.assign(n, 0);
  s.done.assign(n, 0);
  s.status_buf.assign(64 + 128 * n, '\0');

  int sp[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0) return sys::sys_error("socketpair");
  sys::Fd ours(sp[0]), theirs(sp[1]);
  int on = 1;
  if (::setsockopt(ours.get(), SOL_SOCKET, SO_PASSCRED, &on, sizeof on) != 0) return sys::sys_error("SO_PASSCRED");
  s.sock = theirs.get();
  s.caller_sock = ours.get();

  // No CLONE_NEWCGROUP: the init makes the pod's cgroup namespace once it is in its cgroup.
  std::uint64_t flags = CLONE_PIDFD | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC;
  if (spec.cgroup_v2_fd >= 0) flags |= CLONE_INTO_CGROUP;
  if (spec.new_userns) flags |= CLONE_NEWUSER;
  // With no network hook to set up (`none`), nothing needs /proc/PID/ns/net at once:
  // the init makes the namespace itself, beside our work below.
  s.make_netns = spec.net != NetMode::host && !made_netns && !spec.network;
  if (spec.net != NetMode::host && !made_netns && !s.make_netns) flags |= CLONE_NEWNET;
  if (spec.private_time) flags |= CLONE_NEWTIME;
  int pidfd = -1;
  clone_args ca{};
  ca.flags = flags;
  ca.pidfd = reinterpret_cast<std::uint64_t>(&pidfd);
  ca.exit_signal = SIGCHLD;
  if (spec.cgroup_v2_fd >= 0) ca.cgroup = static_cast<std::uint64_t>(spec.cgroup_v2_fd);
  long pid = ::syscall(SYS_clone3, &ca, sizeof ca);
  if (pid < 0)
    return spec.cgroup_v2_fd >= 0 ? sys::sys_error("starting the pod: clone3 with new namespaces into its cgroup")
                                  : sys::sys_error("starting the pod: clone3 with new namespaces");
  if (pid == 0) detail::init_main(s);
  sys::Fd pidfd_owned(pidfd);  // declared first: the guard below still uses it when unwinding
  InitGuard guard{static_cast<pid_t>(pid), pidfd};
  theirs.reset();
  owned.clear();  // the init has its own copies now
  auto ctx = [](sys::Error e) { return sys::Unexpected(std::move(e).context("starting the pod")); };

  if (spec.new_userns) {
    if (auto r = idmap::write_maps(guard.pid, spec.uids, spec.gids, idmap::MapWriter::direct, {}); !r)
      return ctx(std::move(r).error().context("writing the pod's id maps"));
  }
  // Opened now: after "go" the init is not dumpable, and /proc/PID/ns/net is refused to
  // a caller without CAP_SYS_PTRACE over it.
  sys::Fd netns;
  if (spec.network && made_netns) {
    netns = sys::Fd(::fcntl(spec.netns_fd, F_DUPFD_CLOEXEC, 3));
    if (!netns) return ctx(sys::sys_error("dup").error());
  } else if (spec.network) {
    auto f = sys::open_at(sys::FdRef::cwd(), fmt::format("/proc/{}/ns/net", pid), O_RDONLY);
    if (!f) return ctx(std::move(f).error().context("opening the pod's network namespace"));
    netns = std::move(*f);
  }
  auto userns = sys::open_at(sys::FdRef::cwd(),
                             spec.new_userns ? fmt::format("/proc/{}/ns/user", pid) : "/proc/self/ns/user", O_RDONLY);
  if (!userns) return ctx(std::move(userns).error());
  auto mounts = prepare(*userns);
  if (!mounts) return ctx(std::move(mounts).error());
  if (auto r = send_mounts(ours.get(), std::move(*mounts), n); !r) return ctx(std::move(r).error());
  // Limits and network while the apps set up their roots (they wait for them before
  // exec). A send that fails means the init ended: its report follows below.
  if (s.await_caller) {
    if (spec.limits)
      if (auto r = spec.limits(); !r) return ctx(std::move(r).error());
    if (spec.network)
      if (auto r = spec.network(guard.pid, netns.get()); !r) return ctx(std::move(r).error());
    Msg go;
    go.kind = detail::kMsgAppsGo;
    (void)send(ours.get(), go, -1);
  }

  std::vector<pid_t> app_pids(n, 0);
  sys::Fd pty;
  for (;;) {
    Msg m;
    int fd = -1, cred_pid = 0;
    long got = detail::recv_msg(ours.get(), &m, &fd, &cred_pid);
    sys::Fd passed(fd);
    if (got < 0) return ctx(sys::sys_error("waiting for the pod").error());
    if (got == 0) {
      sys::ExitStatus ended = guard.reap();
      return ctx(sys::Error{0, fmt::format("the pod init ended before the apps started ({})", ended.describe())});
    }
    if (m.kind == detail::kMsgReady) break;
    bool app_ok = m.app >= 0 && static_cast<std::size_t>(m.app) < n;
    if (m.kind == detail::kMsgFailed)
      return ctx(detail::describe_failure({m.step, m.err}, app_ok ? &spec.apps[static_cast<std::size_t>(m.app)] : nullptr));
    if (m.kind == detail::kMsgPty && passed) pty = std::move(passed);
    else if (m.kind == detail::kMsgStarted && app_ok) app_pids[static_cast<std::size_t>(m.app)] = cred_pid;
    else return ctx(sys::Error{EPROTO, fmt::format("unexpected message {} from the pod init", m.kind)});
  }
  std::uint64_t started = start_time_of(guard.pid).value_or(0);
  guard.armed = false;
  return RunningPod(guard.pid, std::move(pidfd_owned), std::move(app_pids), started, std::move(pty));
}

sys::Result<sys::ExitStatus> RunningPod::wait() {
  if (!pidfd_) return sys::make_error(ECHILD, "the pod was waited for already");
  siginfo_t si{};
  while (::waitid(P_PIDFD, static_cast<id_t>(pidfd_.get()), &si, WEXITED) != 0)
    if (errno != EINTR) return sys::sys_error("waiting for the pod init");
  pidfd_.reset();
  sys::ExitStatus st;
  if (si.si_code == CLD_EXITED) st.code = si.si_status;
  else st.signal = si.si_status;
  return st;
}

sys::Result<void> RunningPod::signal(int sig) {
  if (!pidfd_) return sys::make_error(ESRCH, "the pod has ended");
  if (::syscall(SYS_pidfd_send_signal, pidfd_.get(), sig, nullptr, 0) != 0)
    return sys::sys_error("signalling the pod init");
  return {};
}

int exit_code_of(const sys::ExitStatus& s) { return s.signal ? 128 + s.signal : s.code & 0xff; }

}  // namespace pod::runtime
