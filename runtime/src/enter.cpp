// enter(): `pod enter`. A forked child joins the target's namespaces with one setns on
// its pidfd (atomic, Linux 5.8), forks again (a pid namespace applies to children) and
// that grandchild becomes the app exactly as the pod's apps do: same ids, capabilities,
// no_new_privs, seccomp, PATH search.
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "init.hpp"
#include "pod/runtime/spawn.hpp"
#include "pod/sys/fs.hpp"

namespace pod::runtime {

namespace {

sys::Result<pid_t> pid_of(sys::FdRef pidfd) {
  std::string info = POD_TRY(sys::read_file(sys::FdRef::cwd(), fmt::format("/proc/self/fdinfo/{}", pidfd.get()), 4096));
  auto at = info.find("\nPid:");
  if (at == std::string::npos) return sys::make_error(EBADF, "not a pidfd");
  long pid = std::strtol(info.c_str() + at + 5, nullptr, 10);
  if (pid <= 0) return sys::make_error(ESRCH, "the pod's process has ended");
  return static_cast<pid_t>(pid);
}

sys::Result<bool> same_userns(pid_t pid) {
  struct stat ours = POD_TRY(sys::stat_at(sys::FdRef::cwd(), "/proc/self/ns/user", 0));
  struct stat theirs = POD_TRY(sys::stat_at(sys::FdRef::cwd(), fmt::format("/proc/{}/ns/user", pid), 0));
  return ours.st_dev == theirs.st_dev && ours.st_ino == theirs.st_ino;
}

// Ends this process the way `st` says the app ended.
[[noreturn]] void pass_on(int st) noexcept {
  if (WIFSIGNALED(st)) {
    int sig = WTERMSIG(st);
    rlimit none{0, 0};
    ::setrlimit(RLIMIT_CORE, &none);  // the app dumped already, if it did
    ::signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
    ::kill(::getpid(), sig);
    ::_exit(128 + sig);
  }
  ::_exit(WEXITSTATUS(st));
}

[[noreturn]] void joined_app(const detail::PreparedApp& app, int report) noexcept {
  detail::reset_signals();
  if (::setresgid(0, 0, 0) != 0 || ::setresuid(0, 0, 0) != 0) detail::report_and_exit(report, detail::kStepIds, errno);
  (void)::setgroups(0, nullptr);
  if (::chdir("/") != 0) detail::report_and_exit(report, detail::kStepNsJoin, errno);
  detail::become_and_exec(app, report);
}

// Moves the calling process into each cgroup ("0" is the writer itself). No allocation.
int join_cgroups(const std::vector<std::string>& procs) noexcept {
  for (const auto& p : procs) {
    int fd = ::open(p.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return -1;
    bool ok = ::write(fd, "0", 1) == 1;
    int e = errno;
    ::close(fd);
    if (!ok) return errno = e, -1;
  }
  return 0;
}

}  // namespace

sys::Result<sys::ExitStatus> enter(sys::FdRef pidfd, const App& app, bool tty, const std::vector<std::string>& cgroup_procs) {
  // With or without tty the entered process keeps the caller's stdio (its terminal)
  // and stays in the caller's session, so job control and ^C work as for any command.
  (void)tty;
  detail::PreparedApp prepared = POD_TRY(detail::prepare_app(app));
  pid_t target = POD_TRY(pid_of(pidfd));
  bool same = POD_TRY(same_userns(target));
  int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWCGROUP;
  if (!same) flags |= CLONE_NEWUSER;

  int rep[2];
  if (::pipe2(rep, O_CLOEXEC) != 0) return sys::sys_error("pipe");
  sys::Fd rep_r(rep[0]), rep_w(rep[1]);
  pid_t child = ::fork();
  if (child < 0) return sys::sys_error("fork");
  if (child == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);  // nothing in the pod may ptrace us
    // The cgroups first, from outside (the pod sees its cgroups read-only); the app's
    // cgroup namespace then comes with setns.
    if (join_cgroups(cgroup_procs) != 0) detail::report_and_exit(rep_w.get(), detail::kStepCgroupJoin, errno);
    if (::setns(pidfd.get(), flags) != 0) detail::report_and_exit(rep_w.get(), detail::kStepNsJoin, errno);
    pid_t app_pid = ::fork();
    if (app_pid < 0) detail::report_and_exit(rep_w.get(), detail::kStepFork, errno);
    if (app_pid == 0) joined_app(prepared, rep_w.get());
    ::close(rep_w.release());
    // Signals for the app reach it through the caller's process group; we only wait.
    int st = 0;
    while (::waitpid(app_pid, &st, 0) < 0)
      if (errno != EINTR) ::_exit(detail::kSetupFailedExit);
    pass_on(st);
  }
  rep_w.reset();
  detail::StepError e;
  ssize_t n;
  do n = ::read(rep_r.get(), &e, sizeof e);
  while (n < 0 && errno == EINTR);
  int st = 0;
  while (::waitpid(child, &st, 0) < 0)
    if (errno != EINTR) return sys::sys_error("waiting for the entered process");
  if (n == sizeof e) return sys::Unexpected(detail::describe_failure(e, &app).context("entering the pod"));
  sys::ExitStatus out;
  if (WIFSIGNALED(st)) out.signal = WTERMSIG(st);
  else out.code = WEXITSTATUS(st);
  return out;
}

}  // namespace pod::runtime
