// User-mode networking for pods of ordinary users: pasta (passt) or slirp4netns, run in
// the caller's user namespace (which owns the pod's network namespace), joining the
// pod's namespace by an inherited fd. Port forwards are pasta's -t/-u options, or
// slirp4netns's API socket. The helper's pid and start time go to the record; teardown
// stops it.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net_helper.hpp"
#include "pod/runtime/pods.hpp"
#include "pod/sys/child.hpp"
#include "pod/sys/fd.hpp"

namespace pod::runtime {

namespace {

constexpr const char* kSlirpDns = "10.0.2.3";

}  // namespace

std::optional<SlirpHelper> find_slirp_helper() {
  if (sys::in_path("pasta")) return SlirpHelper::pasta;
  if (sys::in_path("slirp4netns")) return SlirpHelper::slirp4netns;
  return std::nullopt;
}

const char* helper_name(SlirpHelper h) { return h == SlirpHelper::pasta ? "pasta" : "slirp4netns"; }

sys::Result<void> check_tun() {
  sys::Fd f(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
  if (f) return {};
  if (errno == EACCES || errno == EPERM)
    return sys::sys_error("slirp networking needs /dev/net/tun, which this user cannot open "
                          "(`sudo chmod 0666 /dev/net/tun` as most distributions ship it, or --net none)");
  return sys::sys_error("slirp networking needs /dev/net/tun (modprobe tun, or --net none)");
}

std::string resolv_conf_for(const NetRequest& req) {
  if (req.mode != NetMode::slirp) return "";
  return fmt::format("nameserver {}\n", req.helper == SlirpHelper::pasta ? detail::kPastaDns : kSlirpDns);
}

namespace detail {

sys::Result<void> slirp_start(const NetRequest& req, int netns_fd, NetRecord& rec, const PersistNet& persist,
                              std::unique_ptr<HelperLaunch> launched) {
  POD_TRY(check_tun());
  rec.helper = helper_name(req.helper);
  rec.active = true;
  auto launch = launched ? std::move(launched) : POD_TRY(launch_helper(req, netns_fd));
  auto r = finish_helper(*launch, req, netns_fd, rec, persist);
  if (r && req.rate) r = tc_limit(netns_fd, req.helper == SlirpHelper::pasta ? "eth0" : "tap0", *req.rate);
  if (!r) {
    (void)slirp_stop(rec, HelperWait::always);
    return r;
  }
  return {};
}

sys::Result<void> stop_process(pid_t pid, std::uint64_t start_time, const std::string& what, bool wait) {
  auto t = process_start_time(pid);
  if (!t || (start_time != 0 && *t != start_time)) return {};
  sys::Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  // SIGKILL: pasta is the init of a pid namespace of its own, where SIGTERM from
  // outside is ignored; none of them has anything to save.
  if (pidfd && ::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0) != 0 && errno != ESRCH)
    return sys::sys_error("stopping {} (pid {})", what, pid);
  if (pidfd && wait) {
    // (pasta takes some 20 ms to end: its socket and pipe pools.)
    pollfd p{pidfd.get(), POLLIN, 0};
    (void)::poll(&p, 1, 1000);
    (void)::waitpid(pid, nullptr, WNOHANG);
  }
  return {};
}

sys::Result<void> slirp_stop(NetRecord& rec, HelperWait wait) {
  const bool until_ended = wait == HelperWait::always || !rec.ports.empty();
  if (rec.forwarder_pid > 0) {
    POD_TRY(stop_process(rec.forwarder_pid, rec.forwarder_start_time, "the port forwarder", until_ended));
    rec.forwarder_pid = 0;
    rec.forwarder_start_time = 0;
  }
  if (rec.helper_pid > 0) {
    POD_TRY(stop_process(rec.helper_pid, rec.helper_start_time, rec.helper, until_ended));
    rec.helper_pid = 0;
    rec.helper_start_time = 0;
  }
  return {};
}

}  // namespace detail

}  // namespace pod::runtime
