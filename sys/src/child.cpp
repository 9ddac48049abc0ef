#include "pod/sys/child.hpp"

#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

namespace pod::sys {

std::string ExitStatus::describe() const {
  if (signal) return fmt::format("killed by signal {} ({})", signal, ::sigabbrev_np(signal) ?: "?");
  return fmt::format("exit status {}", code);
}

Result<Child> Child::spawn(const std::vector<std::string>& argv, const SpawnOptions& opts) {
  if (argv.empty()) return make_error(EINVAL, "no program to run");
  // Everything the child needs is prepared before clone: it must not allocate.
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  if (opts.env) {
    for (auto& e : *opts.env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
  }
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) return sys_error("pipe");
  Fd report_r(report[0]), report_w(report[1]);

  int pidfd = -1;
  clone_args ca{};
  ca.flags = CLONE_PIDFD;
  ca.pidfd = reinterpret_cast<std::uint64_t>(&pidfd);
  ca.exit_signal = SIGCHLD;
  long pid = ::syscall(SYS_clone3, &ca, sizeof ca);
  if (pid < 0) return sys_error("clone3 for '{}'", argv[0]);
  if (pid == 0) {
    auto move_to = [](int from, int to) {
      if (from < 0) return true;
      if (from == to) return ::fcntl(from, F_SETFD, 0) == 0;
      return ::dup2(from, to) >= 0;
    };
    if (move_to(opts.stdin_fd, 0) && move_to(opts.stdout_fd, 1) && move_to(opts.stderr_fd, 2)) {
      if (opts.env)
        ::execvpe(args[0], args.data(), envp.data());
      else
        ::execvp(args[0], args.data());
    }
    int err = errno;
    (void)!::write(report_w.get(), &err, sizeof err);
    ::_exit(127);
  }
  report_w.reset();
  Child child(static_cast<pid_t>(pid), Fd(pidfd));
  int err = 0;
  ssize_t n;
  do n = ::read(report_r.get(), &err, sizeof err);
  while (n < 0 && errno == EINTR);
  if (n == sizeof err) {
    (void)child.wait();
    return make_error(err, "cannot run '{}'", argv[0]);
  }
  return child;
}

Child::Child(Child&& o) noexcept : pid_(std::exchange(o.pid_, -1)), pidfd_(std::move(o.pidfd_)) {}

Child& Child::operator=(Child&& o) noexcept {
  if (this != &o) {
    if (pid_ > 0) {
      (void)kill(SIGKILL);
      (void)wait();
    }
    pid_ = std::exchange(o.pid_, -1);
    pidfd_ = std::move(o.pidfd_);
  }
  return *this;
}

Child::~Child() {
  if (pid_ > 0) {
    (void)kill(SIGKILL);
    (void)wait();
  }
}

Result<void> Child::kill(int sig) {
  if (pid_ <= 0) return make_error(ESRCH, "no child");
  if (::syscall(SYS_pidfd_send_signal, pidfd_.get(), sig, nullptr, 0) != 0)
    return sys_error("pidfd_send_signal");
  return {};
}

Result<ExitStatus> Child::wait() {
  if (pid_ <= 0) return make_error(ECHILD, "no child to wait for");
  siginfo_t si{};
  while (::waitid(P_PIDFD, static_cast<id_t>(pidfd_.get()), &si, WEXITED) != 0) {
    if (errno == EINTR) continue;
    return sys_error("waitid");
  }
  pid_ = -1;
  pidfd_.reset();
  ExitStatus st;
  if (si.si_code == CLD_EXITED)
    st.code = si.si_status;
  else
    st.signal = si.si_status;
  return st;
}

Result<void> run_program(const std::vector<std::string>& argv, const SpawnOptions& opts) {
  Child child = POD_TRY(Child::spawn(argv, opts));
  ExitStatus st = POD_TRY(child.wait());
  if (!st.success()) return make_error(0, "'{}' failed: {}", argv[0], st.describe());
  return {};
}

std::optional<std::string> find_program(std::string_view name, std::string_view dirs) {
  while (!dirs.empty()) {
    auto colon = dirs.find(':');
    std::string_view dir = dirs.substr(0, colon);
    std::string path = std::string(dir) + "/" + std::string(name);
    if (!dir.empty() && ::access(path.c_str(), X_OK) == 0) return path;
    if (colon == std::string_view::npos) break;
    dirs = dirs.substr(colon + 1);
  }
  return std::nullopt;
}

bool in_path(std::string_view name) {
  const char* path = std::getenv("PATH");
  return find_program(name, path ? path : "/usr/local/bin:/usr/bin:/bin").has_value();
}

}  // namespace pod::sys
