// Launching and finishing the slirp helper (net_helper.hpp), and EarlySlirp: the
// pod's network namespace made, and its helper launched, before the pod exists.
#include "net_helper.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "pod/runtime/pods.hpp"
#include "pod/sys/fs.hpp"

namespace pod::runtime {

namespace detail {

namespace {

constexpr int kHelperReadyMs = 5000;

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The helper's pid file: the claim STORE/pods/.helper-<uuid>, locked while we live.
sys::Result<void> open_pidfile(const NetRequest& req, HelperLaunch& l) {
  if (req.claim_dir.empty()) return sys::make_error(EINVAL, "no pods directory to claim the network helper in");
  if (::mkdir(req.claim_dir.c_str(), 0700) != 0 && errno != EEXIST)
    return sys::sys_error("the store's pods directory '{}'", req.claim_dir);
  std::string path = fmt::format("{}/{}{}", req.claim_dir, kHelperClaimPrefix, req.uuid);
  sys::Fd f(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!f) return sys::sys_error("claiming the pod's network helper at '{}'", path);
  l.pidfile = path;  // from here on removed by ~HelperLaunch
  if (::flock(f.get(), LOCK_EX) != 0) return sys::sys_error("locking '{}'", path);
  l.claim_lock = std::move(f);
  return {};
}

// The record names the helper now: its claim goes.
void release_claim(HelperLaunch& l) {
  if (!l.pidfile.empty()) ::unlink(l.pidfile.c_str());
  l.pidfile.clear();
  l.claim_lock.reset();
}

// pasta forks to the background once the namespace is configured: the foreground
// part's exit says it is ready, and -P names the daemon's pid.
sys::Result<void> launch_pasta(const NetRequest& req, int netns_fd, HelperLaunch& l) {
  POD_TRY(open_pidfile(req, l));
  const std::string pidfile = l.pidfile;
  // By an inherited fd: pasta drops its capabilities before opening the namespace, and
  // /proc/PID/ns/net of the pod's init (which has them all) would then be refused.
  sys::Fd ns = POD_TRY(inheritable_netns(netns_fd));
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
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return sys::sys_error("pipe");
  sys::Fd out_r(out[0]), out_w(out[1]);
  sys::Fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!null) return sys::sys_error("opening /dev/null");
  sys::SpawnOptions opts;
  opts.stdin_fd = null.get();
  opts.stdout_fd = out_w.get();
  opts.stderr_fd = out_w.get();
  l.pasta = POD_TRY_CTX(sys::Child::spawn(argv, opts), "running pasta");
  l.output = std::move(out_r);
  return {};
}

// What pasta's foreground part printed, once it has ended, and how it ended.
sys::Result<std::pair<std::string, sys::ExitStatus>> pasta_ended(HelperLaunch& l) {
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(l.output.get(), buf, sizeof buf);
    if (n > 0) text.append(buf, static_cast<std::size_t>(n));
    else if (n == 0 || errno != EINTR) break;
  }
  l.output.reset();
  sys::ExitStatus st = POD_TRY(l.pasta->wait());
  return std::pair{std::move(text), st};
}

// The daemon's pid from the pid file.
pid_t pasta_daemon(const HelperLaunch& l) {
  auto text = sys::read_file(sys::FdRef::cwd(), l.pidfile, 64);
  return text ? static_cast<pid_t>(std::atoi(text->c_str())) : 0;
}

sys::Result<void> finish_pasta(HelperLaunch& l, NetRecord& rec, const PersistNet& persist) {
  auto [text, st] = POD_TRY(pasta_ended(l));
  pid_t daemon = st.success() ? pasta_daemon(l) : 0;
  if (!st.success())
    return sys::make_error(EIO, "pasta could not set up the pod's network: {}",
                           text.empty() ? st.describe() : trimmed(text));
  if (daemon <= 0) return sys::make_error(EPROTO, "pasta wrote no pid to its pid file");
  rec.helper_pid = daemon;
  rec.helper_start_time = process_start_time(daemon).value_or(0);
  l.handed_over = true;
  POD_TRY(persist(rec));
  release_claim(l);
  return {};
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
sys::Result<void> launch_slirp4netns(const NetRequest& req, int netns_fd, HelperLaunch& l) {
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) return sys::sys_error("pipe");
  sys::Fd ready_r(ready[0]), ready_w(ready[1]);
  // Its API socket for UDP forwards only: pod forwards TCP itself (start_forwarder).
  bool udp = std::any_of(req.ports.begin(), req.ports.end(), [](const PortForward& p) { return p.proto == "udp"; });
  std::string api = udp ? fmt::format("/tmp/pod-slirp-{}.sock", req.uuid) : "";
  // Sandboxed (an empty root of its own, no capabilities) and under seccomp, as podman
  // runs it: it parses what the pod sends. (pasta confines itself.)
  std::vector<std::string> args = {"slirp4netns",       "--configure",       "--mtu=65520",
                                   "--disable-host-loopback", "--enable-sandbox", "--enable-seccomp",
                                   "--netns-type=path", "--ready-fd=3"};
  sys::Fd ns = POD_TRY(inheritable_netns(netns_fd));
  if (!api.empty()) args.push_back("--api-socket=" + api);
  args.push_back(fmt::format("/proc/self/fd/{}", ns.get()));
  args.push_back("tap0");
  std::vector<char*> cargv;
  for (auto& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  POD_TRY(open_pidfile(req, l));
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
  l.slirp4netns = pid;
  std::string text = fmt::format("{}\n", pid);
  if (::write(l.claim_lock.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    return sys::sys_error("writing slirp4netns's pid to '{}'", l.pidfile);
  l.ready = std::move(ready_r);
  l.api = api;
  return {};
}

sys::Result<void> finish_slirp4netns(HelperLaunch& l, const NetRequest& req, int netns_fd, NetRecord& rec,
                                     const PersistNet& persist) {
  pid_t pid = l.slirp4netns;
  rec.helper_pid = pid;
  rec.helper_start_time = process_start_time(pid).value_or(0);
  l.handed_over = true;  // stopped by the record from here on
  POD_TRY(persist(rec));
  release_claim(l);
  pollfd pfd{l.ready.get(), POLLIN, 0};
  char c = 0;
  if (::poll(&pfd, 1, kHelperReadyMs) != 1 || ::read(l.ready.get(), &c, 1) != 1) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid)
      return sys::make_error(EIO, "slirp4netns ended before the pod's network was ready ({})",
                             WIFEXITED(status) ? fmt::format("exit {}", WEXITSTATUS(status)) : "killed");
    return sys::make_error(ETIMEDOUT, "slirp4netns did not get the pod's network ready in {} ms", kHelperReadyMs);
  }
  for (const auto& p : req.ports) {
    if (p.proto != "udp") continue;
    POD_TRY_CTX(slirp_api(l.api, fmt::format(R"({{"execute":"add_hostfwd","arguments":{{"proto":"{}","host_addr":"{}",)"
                                             R"("host_port":{},"guest_port":{}}}}})",
                                             p.proto, p.host_addr, p.host_port, p.pod_port)),
                "forwarding host port {}", p.str());
  }
  if (std::none_of(req.ports.begin(), req.ports.end(), [](const PortForward& p) { return p.proto == "tcp"; })) return {};
  rec.forwarder_pid = POD_TRY(start_forwarder(req.ports, netns_fd));
  rec.forwarder_start_time = process_start_time(rec.forwarder_pid).value_or(0);
  return persist(rec);
}

}  // namespace

HelperLaunch::~HelperLaunch() {
  if (!handed_over && pasta && output) {
    if (auto ended = pasta_ended(*this); ended && ended->second.success())
      if (pid_t daemon = pasta_daemon(*this); daemon > 0) (void)stop_process(daemon, 0, "pasta", false);
  }
  if (!handed_over && slirp4netns > 0) (void)stop_process(slirp4netns, 0, "slirp4netns", true);
  if (!pidfile.empty()) ::unlink(pidfile.c_str());
  if (!api.empty()) ::unlink(api.c_str());  // the forwards are made; the socket is not needed
}

sys::Result<std::unique_ptr<HelperLaunch>> launch_helper(const NetRequest& req, int netns_fd) {
  auto l = std::make_unique<HelperLaunch>();
  l->helper = req.helper;
  if (req.helper == SlirpHelper::pasta) POD_TRY(launch_pasta(req, netns_fd, *l));
  else POD_TRY(launch_slirp4netns(req, netns_fd, *l));
  return l;
}

sys::Result<void> finish_helper(HelperLaunch& l, const NetRequest& req, int netns_fd, NetRecord& rec,
                               const PersistNet& persist) {
  if (l.helper == SlirpHelper::pasta) return finish_pasta(l, rec, persist);
  return finish_slirp4netns(l, req, netns_fd, rec, persist);
}

}  // namespace detail

sys::Result<EarlySlirp> EarlySlirp::begin(const NetRequest& req) {
  if (req.mode != NetMode::slirp) return sys::make_error(EINVAL, "an early network is for slirp only");
  POD_TRY(check_tun());
  // Made by a thread of its own, which alone moves into it: we could not come back to
  // our namespace, which belongs to the user namespace above ours. (The helper must
  // start in ours, as must everything else pod runs.)
  sys::Result<sys::Fd> made = sys::make_error(EINVAL, "not made");
  std::thread([&made] {
    if (::unshare(CLONE_NEWNET) != 0) made = sys::sys_error("a network namespace for the pod");
    else made = sys::open_at(sys::FdRef::cwd(), "/proc/thread-self/ns/net", O_RDONLY);
  }).join();
  EarlySlirp e;
  e.netns_ = POD_TRY(std::move(made));
  e.launch_ = POD_TRY(detail::launch_helper(req, e.netns_.get()));
  return e;
}

EarlySlirp::EarlySlirp() = default;
EarlySlirp::EarlySlirp(EarlySlirp&&) noexcept = default;
EarlySlirp& EarlySlirp::operator=(EarlySlirp&&) noexcept = default;
EarlySlirp::~EarlySlirp() = default;

std::unique_ptr<detail::HelperLaunch> EarlySlirp::take_launch() { return std::move(launch_); }

}  // namespace pod::runtime
