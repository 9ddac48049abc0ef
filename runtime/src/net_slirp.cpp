// User-mode networking for pods of ordinary users: pasta (passt) or slirp4netns, run in
// the caller's user namespace (which owns the pod's network namespace), joining the
// pod's namespace by an inherited fd. Port forwards are pasta's -t/-u options, or
// slirp4netns's API socket. The helper's pid and start time go to the record; teardown
// stops it.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "pod/runtime/net.hpp"
#include "pod/runtime/pods.hpp"
#include "pod/sys/child.hpp"
#include "pod/sys/fd.hpp"
#include "pod/sys/fs.hpp"

namespace pod::runtime {

namespace {

constexpr const char* kPastaDns = "169.254.1.1";
constexpr const char* kSlirpDns = "10.0.2.3";
constexpr int kHelperReadyMs = 5000;

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// pasta forks to the background once the namespace is configured; the parent's exit
// tells us it is ready, and -P names the daemon's pid.
sys::Result<void> start_pasta(const NetRequest& req, int netns_fd, NetRecord& rec, const PersistNet& persist) {
  char pidfile[] = "/tmp/pod-pasta-XXXXXX";
  sys::Fd pf(::mkostemp(pidfile, O_CLOEXEC));
  if (!pf) return sys::sys_error("a pid file for pasta");
  // By an inherited fd: pasta drops its capabilities before opening the namespace, and
  // /proc/PID/ns/net of the pod's init (which has them all) would then be refused.
  sys::Fd ns = POD_TRY(detail::inheritable_netns(netns_fd));
  std::vector<std::string> argv = {"pasta", "--config-net", "--quiet", "--no-netns-quit",
                                   "--netns", fmt::format("/proc/self/fd/{}", ns.get()),
                                   "--dns-forward", kPastaDns, "--no-map-gw", "-I", "eth0", "-P", pidfile};
  bool tcp = false, udp = false;
  for (const auto& p : req.ports) {
    argv.push_back(p.proto == "udp" ? "-u" : "-t");
    argv.push_back(fmt::format("{}/{}:{}", p.host_addr, p.host_port, p.pod_port));
    (p.proto == "udp" ? udp : tcp) = true;
  }
  if (!tcp) argv.insert(argv.end(), {"-t", "none"});
  if (!udp) argv.insert(argv.end(), {"-u", "none"});
  argv.insert(argv.end(), {"-T", "none", "-U", "none"});
  auto out = detail::run_with_input(argv, "", {});
  std::string text = out ? POD_TRY(sys::read_file(sys::FdRef::cwd(), pidfile, 64)) : "";
  ::unlink(pidfile);
  if (!out) return sys::Unexpected(std::move(out).error());
  if (out->code != 0) return sys::make_error(EIO, "pasta could not set up the pod's network: {}", trimmed(out->err + out->out));
  rec.helper_pid = static_cast<pid_t>(std::atoi(text.c_str()));
  if (rec.helper_pid <= 0) return sys::make_error(EPROTO, "pasta wrote no pid to its pid file");
  rec.helper_start_time = process_start_time(rec.helper_pid).value_or(0);
  return persist(rec);
}

// One request on slirp4netns's API socket: {"execute": "add_hostfwd", ...}.
sys::Result<void> slirp_api(const std::string& socket_path, const std::string& request) {
  sys::Fd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) return sys::sys_error("socket");
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof a.sun_path) return sys::make_error(ENAMETOOLONG, "'{}'", socket_path);
  std::memcpy(a.sun_path, socket_path.c_str(), socket_path.size() + 1);
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
    return sys::sys_error("connecting to slirp4netns at '{}'", socket_path);
  if (::write(s.get(), request.data(), request.size()) != static_cast<ssize_t>(request.size()))
    return sys::sys_error("writing to slirp4netns");
  ::shutdown(s.get(), SHUT_WR);
  std::string reply;
  char buf[1024];
  for (ssize_t n; (n = ::read(s.get(), buf, sizeof buf)) > 0;) reply.append(buf, static_cast<std::size_t>(n));
  if (reply.find("\"error\"") != std::string::npos) return sys::make_error(EIO, "slirp4netns: {}", trimmed(reply));
  return {};
}

// slirp4netns stays in the foreground: started in a session of its own, ready when it
// writes to --ready-fd.
sys::Result<void> start_slirp4netns(const NetRequest& req, int netns_fd, NetRecord& rec, const PersistNet& persist) {
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) return sys::sys_error("pipe");
  sys::Fd ready_r(ready[0]), ready_w(ready[1]);
  std::string api = req.ports.empty() ? "" : fmt::format("/tmp/pod-slirp-{}.sock", req.uuid);
  // Sandboxed (an empty root of its own, no capabilities) and under seccomp, as podman
  // runs it: it parses what the pod sends. (pasta confines itself.)
  std::vector<std::string> args = {"slirp4netns",       "--configure",       "--mtu=65520",
                                   "--disable-host-loopback", "--enable-sandbox", "--enable-seccomp",
                                   "--netns-type=path", "--ready-fd=3"};
  sys::Fd ns = POD_TRY(detail::inheritable_netns(netns_fd));
  if (!api.empty()) args.push_back("--api-socket=" + api);
  args.push_back(fmt::format("/proc/self/fd/{}", ns.get()));
  args.push_back("tap0");
  std::vector<char*> cargv;
  for (auto& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return sys::sys_error("fork");
  if (pid == 0) {
    ::setsid();
    ::dup2(ready_w.get(), 3);  // dup2 clears close-on-exec
    int null = ::open("/dev/null", O_RDWR);
    if (null >= 0) {  // it reports on stderr as it goes: not for the pod's terminal
      ::dup2(null, 0);
      ::dup2(null, 1);
      ::dup2(null, 2);
    }
    ::execvp(cargv[0], cargv.data());
    ::_exit(127);
  }
  ready_w.reset();
  rec.helper_pid = pid;
  rec.helper_start_time = process_start_time(pid).value_or(0);
  POD_TRY(persist(rec));
  pollfd pfd{ready_r.get(), POLLIN, 0};
  char c = 0;
  if (::poll(&pfd, 1, kHelperReadyMs) != 1 || ::read(ready_r.get(), &c, 1) != 1) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid)
      return sys::make_error(EIO, "slirp4netns ended before the pod's network was ready ({})",
                             WIFEXITED(status) ? fmt::format("exit {}", WEXITSTATUS(status)) : "killed");
    return sys::make_error(ETIMEDOUT, "slirp4netns did not get the pod's network ready in {} ms", kHelperReadyMs);
  }
  for (const auto& p : req.ports)
    POD_TRY_CTX(slirp_api(api, fmt::format(R"({{"execute":"add_hostfwd","arguments":{{"proto":"{}","host_addr":"{}",)"
                                           R"("host_port":{},"guest_port":{}}}}})",
                                           p.proto, p.host_addr, p.host_port, p.pod_port)),
                "forwarding host port {}", p.str());
  if (!api.empty()) ::unlink(api.c_str());  // the forwards are made; the socket is not needed
  return {};
}

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
  return fmt::format("nameserver {}\n", req.helper == SlirpHelper::pasta ? kPastaDns : kSlirpDns);
}

namespace detail {

sys::Result<void> slirp_start(const NetRequest& req, int netns_fd, NetRecord& rec, const PersistNet& persist) {
  POD_TRY(check_tun());
  rec.helper = helper_name(req.helper);
  rec.active = true;
  if (req.helper == SlirpHelper::pasta) {
    POD_TRY(start_pasta(req, netns_fd, rec, persist));
    if (req.rate) POD_TRY(tc_limit(netns_fd, "eth0", *req.rate));
    return {};
  }
  auto r = start_slirp4netns(req, netns_fd, rec, persist);
  if (r && req.rate) r = tc_limit(netns_fd, "tap0", *req.rate);
  if (!r) {
    (void)slirp_stop(rec, HelperWait::always);
    return r;
  }
  return {};
}

sys::Result<void> slirp_stop(NetRecord& rec, HelperWait wait) {
  if (rec.helper_pid <= 0) return {};
  // Only the process that was started: a recycled pid is someone else's.
  auto t = process_start_time(rec.helper_pid);
  if (t && (rec.helper_start_time == 0 || *t == rec.helper_start_time)) {
    sys::Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, rec.helper_pid, 0)));
    // SIGKILL: pasta is the init of a pid namespace of its own, where SIGTERM from
    // outside is ignored; neither helper has anything to save.
    if (pidfd && ::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0) != 0 && errno != ESRCH)
      return sys::sys_error("stopping {} (pid {})", rec.helper, rec.helper_pid);
    if (pidfd && (wait == HelperWait::always || !rec.ports.empty())) {
      // Ended (its ports free) once the pidfd is readable; our own child is reaped.
      // (pasta takes some 20 ms to end: its socket and pipe pools.)
      pollfd p{pidfd.get(), POLLIN, 0};
      (void)::poll(&p, 1, 1000);
      (void)::waitpid(rec.helper_pid, nullptr, WNOHANG);
    }
  }
  rec.helper_pid = 0;
  rec.helper_start_time = 0;
  return {};
}

}  // namespace detail

}  // namespace pod::runtime
