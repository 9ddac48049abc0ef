// The pod's processes as seen from outside: a pidfd checked against pid reuse, and
// stopping the init (SIGTERM, then SIGKILL).
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>

#include "pod/sys/fs.hpp"
#include "pods_internal.hpp"

namespace pod::runtime {

namespace {

// The fields of /proc/PID/stat after the command name (which may hold spaces and
// parentheses, so it is skipped up to the last ')'): index 0 is field 3.
sys::Result<std::vector<std::string_view>> stat_fields(const std::string& text, pid_t pid) {
  auto close = text.rfind(')');
  if (close == std::string::npos) return sys::make_error(EINVAL, "/proc/{}/stat is malformed", pid);
  std::vector<std::string_view> f;
  std::string_view rest(text);
  rest.remove_prefix(close + 1);
  while (!rest.empty()) {
    auto start = rest.find_first_not_of(" \n");
    if (start == std::string_view::npos) break;
    rest.remove_prefix(start);
    auto end = rest.find_first_of(" \n");
    f.push_back(rest.substr(0, end));
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
  }
  return f;
}

sys::Result<std::uint64_t> stat_number(pid_t pid, std::size_t field) {
  auto text = sys::read_file(sys::FdRef::cwd(), fmt::format("/proc/{}/stat", pid), 4096);
  if (!text) {
    if (text.error().code == ENOENT) return sys::make_error(ESRCH, "process {} is gone", pid);
    return sys::Unexpected(std::move(text.error()));
  }
  auto f = POD_TRY(stat_fields(*text, pid));
  std::uint64_t v = 0;
  if (f.size() <= field - 3 ||
      std::from_chars(f[field - 3].data(), f[field - 3].data() + f[field - 3].size(), v).ec != std::errc{})
    return sys::make_error(EINVAL, "/proc/{}/stat has no field {}", pid, field);
  return v;
}

std::int64_t now_ms() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

// Waits until the process of `pidfd` has ended (true) or `ms` passed (false).
sys::Result<bool> wait_ended(sys::FdRef pidfd, std::int64_t ms) {
  std::int64_t deadline = now_ms() + ms;
  for (;;) {
    struct pollfd p {pidfd.get(), POLLIN, 0};
    std::int64_t left = std::max<std::int64_t>(0, deadline - now_ms());
    int n = ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left, INT32_MAX)));
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) return sys::sys_error("poll on the pidfd");
  }
}

sys::Result<void> send(sys::FdRef pidfd, int sig) {
  if (::syscall(SYS_pidfd_send_signal, pidfd.get(), sig, nullptr, 0) != 0 && errno != ESRCH)
    return sys::sys_error("sending {}", sigabbrev_np(sig));
  return {};
}

}  // namespace

sys::Result<std::uint64_t> process_start_time(pid_t pid) { return stat_number(pid, 22); }

sys::Result<sys::Fd> open_pid(pid_t pid, std::uint64_t start_time) {
  if (pid <= 0) return sys::make_error(ESRCH, "no process (pid {})", pid);
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) {
    if (errno == ESRCH) return sys::make_error(ESRCH, "process {} is gone", pid);
    return sys::sys_error("pidfd_open {}", pid);
  }
  sys::Fd pidfd(fd);
  // Read after pidfd_open: if the pid was reused before, the start time tells.
  std::uint64_t now = POD_TRY(process_start_time(pid));
  if (now != start_time) return sys::make_error(ESRCH, "process {} is gone (its pid is another process's now)", pid);
  return pidfd;
}

sys::Result<sys::Fd> open_app(const PodRecord& pod, const AppRecord& app) {
  auto fail = [&](sys::Error e) {
    return sys::Unexpected(std::move(e).context("app {} of pod {} ({})", app.app.name, pod.name, pod.uuid));
  };
  if (app.pid <= 0) return fail({ESRCH, "it has not started"});
  if (app.start_time != 0) {
    auto fd = open_pid(app.pid, app.start_time);
    if (!fd) return fail(std::move(fd.error()));
    return fd;
  }
  auto init = open_pid(pod.pid, pod.start_time);
  if (!init) return fail(std::move(init.error()).context("the pod's init"));
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, app.pid, 0));
  if (fd < 0) {
    if (errno == ESRCH) return fail({ESRCH, fmt::format("process {} is gone", app.pid)});
    return fail(sys::sys_error("pidfd_open {}", app.pid).error());
  }
  sys::Fd pidfd(fd);
  auto parent = stat_number(app.pid, 4);  // after pidfd_open, as in open_pid
  if (!parent) return fail(std::move(parent.error()));
  if (*parent != static_cast<std::uint64_t>(pod.pid))
    return fail({ESRCH, fmt::format("process {} is gone (its pid is another process's now)", app.pid)});
  return pidfd;
}

sys::Result<void> stop_pod(const PodInfo& pod, double timeout_s) {
  auto& r = pod.record;
  auto fail = [&](sys::Error e) { return sys::Unexpected(std::move(e).context("stopping pod {} ({})", r.name, r.uuid)); };
  if (r.pid == 0) return fail({EINVAL, "it has not started"});
  auto pidfd = open_pid(r.pid, r.start_time);
  if (!pidfd) {
    if (pidfd.error().code == ESRCH) return {};  // ended already
    return fail(std::move(pidfd.error()));
  }
  if (auto s = send(*pidfd, SIGTERM); !s) return fail(std::move(s.error()));
  double ms = std::isfinite(timeout_s) && timeout_s > 0 ? timeout_s * 1000 : 0;
  auto ended = wait_ended(*pidfd, static_cast<std::int64_t>(std::min(ms, 1e12)));
  if (!ended) return fail(std::move(ended.error()));
  if (*ended) return {};
  if (auto s = send(*pidfd, SIGKILL); !s) return fail(std::move(s.error()));
  // SIGKILL ends it unless it is stuck in the kernel (D state); do not wait forever.
  ended = wait_ended(*pidfd, 30000);
  if (!ended) return fail(std::move(ended.error()));
  if (!*ended) return fail({ETIMEDOUT, fmt::format("process {} did not end 30 s after SIGKILL", r.pid)});
  return {};
}

}  // namespace pod::runtime
