// The pod init (PID 1 of the pod) and the app processes it forks. Everything they use
// is prepared in the caller before clone3 (strings, argv/envp arrays, BPF, buffers):
// the children only make system calls and report {step, errno} when one fails.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "mounts.hpp"
#include "pod/runtime/spec.hpp"
#include "security.hpp"
#include "spawn_proto.hpp"

namespace pod::runtime::detail {

struct PreparedApp {
  std::string name;
  std::vector<std::string> argv_s, env_s;
  std::vector<char*> argv, envp;  // NULL-terminated views of the above
  std::string path;               // PATH from env (or the default) for the search
  std::string workdir;
  std::vector<gid_t> groups;
  AppIds ids;
  PreparedSecurity sec;
  // Filled in by the init from the caller's messages.
  AppRoot root;
  int etc[kEtcCount] = {-1, -1, -1};  // the caller's detached /etc file mounts for this app
};

[[nodiscard]] sys::Result<PreparedApp> prepare_app(const App& app);

inline constexpr std::size_t kMaxVolumes = 128;

struct InitState {
  int sock = -1;         // the init's end of the pair
  int caller_sock = -1;  // the caller's end, closed first thing in the init
  int pod_dir = -1;      // status.json goes here
  int lock_fd = -1;      // held until the init ends
  int stdio[3] = {-1, -1, -1};
  bool die_with_caller = true;
  bool tty = false;
  bool own_net = true;
  int join_netns = -1;  // a network namespace made beforehand, joined first thing (or -1)
  bool make_netns = false;  // the init makes the pod's network namespace (not clone3)
  // The caller writes the pod's limits and sets up its network while the apps set up
  // their roots, and sends kMsgAppsGo when it is done: no app execs before that.
  bool await_caller = false;
  // Each app, set up, waits at this gate (a pipe whose write end only the init keeps)
  // until the init closes it.
  int gate[2] = {-1, -1};
  std::string hostname;
  RootSetup root;
  // cgroup v1 hierarchies the apps mount (RootSetup::cgroup_v1 points here).
  std::vector<std::string> cgroup_dirs;
  std::vector<std::vector<std::string>> cgroup_controllers;
  std::vector<CgroupMount> cgroup_mounts;
  std::vector<int> cgroup_tasks;  // v1: the pod's cgroups' `tasks`, written "0" first thing
  std::vector<PreparedApp> apps;
  // Buffers the init fills without allocating.
  std::vector<AppVolume> volumes;          // kMaxVolumes
  // kMaxVolumes targets of PATH_MAX each, where the volumes' paths point. Left
  // uninitialized: of its half megabyte, only the pages the volumes use are touched.
  std::unique_ptr<char[]> volume_targets;
  std::vector<int> keep;                   // fds the init keeps, room for all
  std::vector<pid_t> pids;
  std::vector<int> reports;                // each app's report pipe, read end
  std::vector<int> codes, signals;
  std::vector<char> done;
  std::string status_buf;                  // status.json, room reserved
  sigset_t caller_mask{};
};

// The init: waits for the caller's go, sets up the pod, starts the apps, reaps, writes
// status.json and exits with the pod's code. Never returns.
[[noreturn]] void init_main(InitState& s) noexcept;

// In an app process (or `pod enter`), once in the pod's namespaces as root of its user
// namespace with the root filesystem in place: workdir, ids, capabilities, seccomp,
// fds, then exec with a PATH search. A failure is written to `report` as
// {step, errno} and the process exits 126/127 (exec) or 125.
// No signal blocked, every handler the default: what an app starts with.
void reset_signals() noexcept;
[[noreturn]] void become_and_exec(const PreparedApp& app, int report) noexcept;

[[noreturn]] void report_and_exit(int fd, int step, int err) noexcept;

// A {step, errno} pair as read from a report pipe: "mounting /proc: ...".
struct StepError {
  std::int32_t step = 0, err = 0;
};
[[nodiscard]] sys::Error describe_failure(const StepError& e, const App* app);

}  // namespace pod::runtime::detail
