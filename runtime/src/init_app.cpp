// An app's last steps before exec, shared by the pod's apps and `pod enter`, and the
// words for the steps that can fail.
#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>

#include "init.hpp"

namespace pod::runtime::detail {

namespace {

constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// execvpe without allocation, on the app's own PATH. ENOENT everywhere -> 127; a file
// found but not runnable (EACCES, ENOEXEC, ...) -> 126, as shells do.
[[noreturn]] void exec_search(const PreparedApp& app, int report) noexcept {
  const char* file = app.argv[0];
  if (std::strchr(file, '/')) {
    ::execve(file, app.argv.data(), app.envp.data());
    report_and_exit(report, kStepExec, errno);
  }
  char buf[PATH_MAX];
  const std::size_t flen = std::strlen(file);
  int err = ENOENT;
  bool eacces = false;
  const char* p = app.path.c_str();
  for (;;) {
    const char* end = std::strchr(p, ':');
    std::size_t dlen = end ? static_cast<std::size_t>(end - p) : std::strlen(p);
    if (dlen == 0) {
      buf[0] = '.';
      dlen = 1;
    } else if (dlen < sizeof buf) {
      std::memcpy(buf, p, dlen);
    }
    if (dlen + 1 + flen < sizeof buf) {
      buf[dlen] = '/';
      std::memcpy(buf + dlen + 1, file, flen + 1);
      ::execve(buf, app.argv.data(), app.envp.data());
      switch (errno) {
        case EACCES:
          eacces = true;
          [[fallthrough]];
        case ENOENT:
        case ENOTDIR:
        case ESTALE:
        case ENODEV:
        case ETIMEDOUT:
          break;
        default:
          report_and_exit(report, kStepExec, errno);
      }
    }
    if (!end) break;
    p = end + 1;
  }
  report_and_exit(report, kStepExec, eacces ? EACCES : err);
}

}  // namespace

void report_and_exit(int fd, int step, int err) noexcept {
  StepError e{step, err};
  (void)!::write(fd, &e, sizeof e);
  if (step == kStepExec) ::_exit(err == ENOENT ? 127 : 126);
  ::_exit(kSetupFailedExit);
}

sys::Result<PreparedApp> prepare_app(const App& app) {
  if (app.argv.empty() || app.argv[0].empty()) return sys::make_error(EINVAL, "app '{}' has no command", app.name);
  PreparedApp p;
  p.name = app.name;
  p.argv_s = app.argv;
  p.env_s = app.env;
  for (auto& a : p.argv_s) p.argv.push_back(a.data());
  p.argv.push_back(nullptr);
  for (auto& e : p.env_s) p.envp.push_back(e.data());
  p.envp.push_back(nullptr);
  p.path = kDefaultPath;
  for (const auto& e : app.env)
    if (e.starts_with("PATH=")) p.path = e.substr(5);
  p.workdir = app.workdir.empty() ? "/" : app.workdir;
  p.groups.assign(app.groups.begin(), app.groups.end());
  p.ids = AppIds{app.uid, app.gid, nullptr, p.groups.size()};
  p.sec = POD_TRY_CTX(prepare_security(app.security), "app '{}'", app.name);
  return p;
}

void reset_signals() noexcept {
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
}

void become_and_exec(const PreparedApp& app, int report) noexcept {
  if (::chdir(app.workdir.c_str()) != 0) report_and_exit(report, kStepWorkdir, errno);
  AppIds ids = app.ids;
  ids.groups = app.groups.data();  // the vector may have moved since prepare_app
  int err = 0;
  if (int step = apply_security(app.sec, ids, &err)) report_and_exit(report, step, err);
  // Nothing of the caller's survives exec; the report pipe stays until exec succeeds.
  if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) report_and_exit(report, kStepCloseFds, errno);
  exec_search(app, report);
}

const char* step_name(std::int32_t step) {
  switch (step) {
    case kStepSync: return "talking to the caller";
    case kStepIds: return "becoming root of the pod's user namespace";
    case kStepMountNs: return "a mount namespace for the app";
    case kStepPropagation: return "making mounts slaves of the host's";
    case kStepHostname: return "setting the host name";
    case kStepLoopback: return "bringing up the loopback interface";
    case kStepFork: return "forking the app";
    case kStepRootfs: return "attaching the root filesystem";
    case kStepProc: return "mounting /proc";
    case kStepProcMask: return "masking /proc";
    case kStepSys: return "mounting /sys";
    case kStepDev: return "mounting /dev";
    case kStepDevNodes: return "making /dev nodes";
    case kStepDevPts: return "mounting /dev/pts";
    case kStepDevShm: return "mounting /dev/shm";
    case kStepMqueue: return "mounting /dev/mqueue";
    case kStepEtcFiles: return "mounting /etc/hostname, /etc/hosts, /etc/resolv.conf";
    case kStepVolume: return "mounting a volume";
    case kStepPivot: return "pivot_root";
    case kStepTty: return "setting up the terminal";
    case kStepStdio: return "setting up stdin/stdout/stderr";
    case kStepWorkdir: return "changing to the working directory";
    case kStepRlimits: return "setting rlimits";
    case kStepOomScore: return "setting oom_score_adj";
    case kStepCapBounding: return "dropping capabilities from the bounding set";
    case kStepGroups: return "setting supplementary groups";
    case kStepSetgid: return "setting the gid";
    case kStepSetuid: return "setting the uid";
    case kStepCaps: return "setting capabilities";
    case kStepAmbient: return "setting ambient capabilities";
    case kStepNoNewPrivs: return "setting no_new_privs";
    case kStepSeccomp: return "loading the seccomp filter";
    case kStepCloseFds: return "closing inherited descriptors";
    case kStepExec: return "executing the app";
    case kStepNsJoin: return "joining the pod's namespaces";
    case kStepCgroupNs: return "a cgroup namespace for the pod";
    case kStepCgroupMount: return "mounting /sys/fs/cgroup";
    case kStepCgroupJoin: return "joining the app's cgroups";
    case kStepCgroupMove: return "moving into the pod's cgroups";
    case kStepNetJoin: return "joining the network namespace made for the pod";
    case kStepNetNew: return "making the pod's network namespace";
    default: return "setting up";
  }
}

sys::Error describe_failure(const StepError& e, const App* app) {
  std::string who = app ? fmt::format("app '{}': ", app->name) : "";
  if (e.step == kStepExec && app && !app->argv.empty()) {
    const std::string& f = app->argv[0];
    std::string path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    for (const auto& v : app->env)
      if (v.starts_with("PATH=")) path = v.substr(5);
    bool searched = f.find('/') == std::string::npos;
    switch (e.err) {
      case ENOENT:
        if (searched) return {ENOENT, fmt::format("{}executable '{}' not found in PATH ({})", who, f, path)};
        return {ENOENT, fmt::format("{}executable '{}' not found (or its interpreter is missing)", who, f)};
      case EACCES:
        return {EACCES, fmt::format("{}'{}' is not executable (permission denied, or not a regular file)", who, f)};
      case ENOEXEC:
        return {ENOEXEC, fmt::format("{}'{}' is not in an executable format this kernel runs", who, f)};
      default:
        return {e.err, fmt::format("{}executing '{}': {}", who, f, std::strerror(e.err))};
    }
  }
  return {e.err, fmt::format("{}{}: {}", who, step_name(e.step), std::strerror(e.err))};
}

}  // namespace pod::runtime::detail
