// What a pod is made of, as the runtime receives it: everything decided (maps, argv,
// env, ids, security), every file opened. Policy (which map, which engine) is decided
// before this by cmd/; the runtime only carries it out.
#pragma once

#include <sys/resource.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "pod/idmap/userns.hpp"
#include "pod/sys/error.hpp"
#include "pod/sys/fd.hpp"

namespace pod::runtime {

// [a-z0-9][a-z0-9-]{0,62}: pod names, host names, app names. `what` names the field
// in the error ("pod name 'X' is not allowed: ...").
[[nodiscard]] sys::Result<void> check_name(std::string_view name, std::string_view what);

struct Rlimit {
  int resource = 0;  // RLIMIT_*
  rlim_t soft = 0, hard = 0;
};

struct Security {
  std::vector<int> caps;  // CAP_* kept in the bounding, permitted, effective and inheritable
                          // sets (and ambient for a non-root app); all others dropped
  bool no_new_privs = true;
  enum class Seccomp { default_profile, unconfined, file };
  Seccomp seccomp = Seccomp::default_profile;
  std::string seccomp_file;  // Seccomp::file: an OCI-runtime-spec "seccomp" JSON object
  std::vector<Rlimit> rlimits;
  std::optional<int> oom_score_adj;
};

// rkt's default set: audit_write chown dac_override fowner fsetid kill mknod net_bind_service
// net_raw setfcap setgid setpcap setuid sys_chroot.
[[nodiscard]] std::vector<int> default_caps();
// "CAP_NET_ADMIN", "net_admin", "NET_ADMIN" -> CAP_NET_ADMIN; unknown names are an error.
[[nodiscard]] sys::Result<int> parse_cap(std::string_view name);
[[nodiscard]] std::string cap_name(int cap);  // "CAP_NET_ADMIN"

struct App {
  std::string name;               // unique in the pod
  std::vector<std::string> argv;  // argv[0] without '/' is searched in the PATH of `env`
  std::vector<std::string> env;   // K=V
  std::string workdir = "/";
  std::uint32_t uid = 0, gid = 0;  // ids inside the pod
  std::vector<std::uint32_t> groups;
  Security security;
};

// A mount the caller prepared for an app: a detached mount fd (open_tree clone, maybe
// idmapped) attached at `target`, resolved inside the app's root (RESOLVE_IN_ROOT, so a
// symlink in the image cannot send it to the host) and created when missing.
struct Volume {
  sys::Fd source;
  std::string target;  // absolute, inside the app's root
  bool read_only = false;
  bool directory = true;  // false: the source is a file (target made as an empty file)
};

struct AppMounts {
  sys::Fd rootfs;  // a detached mount: an overlay, or an open_tree clone of a flattened copy
  std::vector<Volume> volumes;
};

// Called in the caller once the pod's user namespace exists and its maps are written,
// before the pod goes on: makes each app's root filesystem and volumes (idmapped
// mounts need `userns`). One AppMounts per app, in the order of PodSpec::apps.
using PrepareMounts = std::function<sys::Result<std::vector<AppMounts>>(sys::FdRef userns)>;

// none: loopback only; host: the host's namespace; slirp, bridge: set up by the
// network hook (runtime/net.hpp) in the pod's own namespace.
enum class NetMode { none, host, slirp, bridge };

struct PodSpec {
  std::string uuid;
  std::string name;
  std::string hostname;
  std::vector<App> apps;

  // The pod's user namespace. new_userns=false: the pod stays in the caller's user
  // namespace (an ordinary user's store namespace: `--userns keep`). Otherwise a new
  // one with these maps, in the caller's ids, written directly (root on the host, or
  // the caller is root of the store namespace it maps from).
  bool new_userns = true;
  idmap::IdMap uids, gids;
  bool private_time = false;  // CLONE_NEWTIME
  NetMode net = NetMode::none;
  // A network namespace made beforehand (EarlySlirp, in the caller's user namespace):
  // the init is cloned into it rather than into a new one. -1: a new one.
  int netns_fd = -1;
  // Called with the init's pid and its network namespace (an fd, valid during the call)
  // once its namespaces exist and the maps are written: sets up the pod's network
  // (runtime/net.hpp) while the apps set up their roots; no app execs before it
  // returns. Empty: nothing.
  std::function<sys::Result<void>(pid_t init_pid, int netns_fd)> network;
  // Called, like network and before it, once the init is on its way into its cgroups:
  // writes the pod's cgroup limits (cgroup.hpp write_limits). Empty: nothing.
  std::function<sys::Result<void>()> limits;

  // Files the pod gets.
  std::string etc_hosts, etc_resolv_conf;  // contents; empty: leave the image's
  sys::FdRef pod_dir = sys::FdRef::from_raw(-1);    // STORE/pods/<uuid>: the init writes status.json here at the end
  sys::FdRef rootfs_dir = sys::FdRef::from_raw(-1);  // STORE/pods/<uuid>/rootfs: the mount point of the first app's root
  // (Each app has a mount namespace of its own and attaches its root there; the init keeps
  // an empty read-only tmpfs there as its own root. start() writes pod_dir/etc/{hostname,
  // hosts,resolv.conf} and binds them into each app's root.)
  int lock_fd = -1;  // the pod's lock (PodDir::lock_fd): the init holds it open until it ends
  // stdio of the apps (-1: inherit the caller's). With tty, the apps get a new pty of
  // the pod's own devpts and a session of their own; the master is returned.
  int stdin_fd = -1, stdout_fd = -1, stderr_fd = -1;
  bool tty = false;
  bool die_with_caller = true;  // foreground: SIGKILL the pod if `pod run` is killed

  // The pod's own cgroups (cgroup.hpp), or none: the pod stays in the caller's. Either
  // way the init makes the pod's cgroup namespace once it is in place, so the pod sees
  // its own cgroups only, mounted read-only at /sys/fs/cgroup.
  int cgroup_v2_fd = -1;  // cgroup v2: the init is cloned straight into it (CLONE_INTO_CGROUP)
  // cgroup v1: the `tasks` files of the pod's cgroups, opened for writing; the init
  // moves itself in first thing (writing "0" there spares the RCU grace period that
  // moving another process costs, some 10 ms).
  std::vector<int> cgroup_v1_tasks;
  std::vector<std::vector<std::string>> cgroup_v1_mounts;  // v1: controllers of each hierarchy the pod mounts
};

}  // namespace pod::runtime
