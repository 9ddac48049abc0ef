// Starting a pod: clone3 into new namespaces, maps written from outside, the root
// filesystem attached and pivoted into, the pod init (PID 1) starting the apps.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "pod/runtime/spec.hpp"
#include "pod/sys/child.hpp"

namespace pod::runtime {

// A setup step of the pod that failed, as the child reports it: {step, errno}.
// Error messages read "starting the pod: mounting /proc: Operation not permitted".

// How the init ended, as written in STORE/pods/<uuid>/status.json by the init:
// {"exit": N, "apps": [{"name": "...", "exit": N, "signal": N}]}
struct AppExit {
  std::string name;
  sys::ExitStatus status;
};

class RunningPod {
 public:
  [[nodiscard]] pid_t pid() const { return pid_; }        // the init, in the caller's pid namespace
  [[nodiscard]] sys::FdRef pidfd() const { return pidfd_; }
  [[nodiscard]] const std::vector<pid_t>& app_pids() const { return app_pids_; }  // caller's pid ns
  [[nodiscard]] std::uint64_t start_time() const { return start_time_; }  // /proc/PID/stat field 22
  [[nodiscard]] sys::FdRef pty_master() const { return pty_; }  // PodSpec::tty only
  // Waits for the init. Its exit code is the pod's: the first failing app's code,
  // 128+N for an app killed by signal N, 126/127 when an app could not be executed.
  [[nodiscard]] sys::Result<sys::ExitStatus> wait();
  // Signals the init (which forwards SIGTERM, SIGINT and SIGHUP to the apps).
  [[nodiscard]] sys::Result<void> signal(int sig);

  RunningPod(pid_t pid, sys::Fd pidfd, std::vector<pid_t> apps, std::uint64_t start_time, sys::Fd pty)
      : pid_(pid), pidfd_(std::move(pidfd)), app_pids_(std::move(apps)), start_time_(start_time),
        pty_(std::move(pty)) {}

 private:
  pid_t pid_;
  sys::Fd pidfd_;
  std::vector<pid_t> app_pids_;
  std::uint64_t start_time_ = 0;
  sys::Fd pty_;
};

// Starts the pod. Returns once every app has been started (or failed to start: then
// the error names the step and the app, and nothing of the pod is left running).
[[nodiscard]] sys::Result<RunningPod> start(const PodSpec& spec, const PrepareMounts& prepare);

// The exit code `pod run` returns for an app's status (0-255).
[[nodiscard]] int exit_code_of(const sys::ExitStatus& s);

// Joins every namespace of the process `pidfd` (user, mount, pid, uts, ipc, net,
// cgroup) and its root and cwd, then runs argv under `security` with the given ids,
// and returns its exit status. Used by `pod enter`; never more power than the app.
// `cgroup_procs`: the app's cgroups (their cgroup.procs files), joined first.
[[nodiscard]] sys::Result<sys::ExitStatus> enter(sys::FdRef pidfd, const App& app, bool tty,
                                                 const std::vector<std::string>& cgroup_procs = {});

}  // namespace pod::runtime
