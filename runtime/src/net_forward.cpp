// TCP port forwards of a pod on slirp4netns, by pod itself: a process of its own listens
// on the host's address and port, and each connection is dialled to 127.0.0.1:POD_PORT
// inside the pod's network namespace and spliced both ways. slirp4netns's own forwarding
// carries the bytes through its user-mode TCP stack; podman's default port handler
// (rootlesskit's) also dials into the namespace instead. (pasta forwards well itself.)
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "net_helper.hpp"

namespace pod::runtime::detail {

namespace {

struct Listener {
  int fd = -1;
  std::uint16_t pod_port = 0;
};

sys::Result<sys::Fd> listen_on(const PortForward& p) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (::inet_pton(AF_INET, p.host_addr.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(p.host_port);
    len = sizeof *v4;
  } else if (::inet_pton(AF_INET6, p.host_addr.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(p.host_port);
    len = sizeof *v6;
  } else {
    return sys::make_error(EINVAL, "--port {}: '{}' is not an IP address", p.str(), p.host_addr);
  }
  sys::Fd s(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) return sys::sys_error("a socket for host port {}", p.str());
  int one = 1;
  (void)::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    if (errno == EADDRINUSE)
      return sys::make_error(EADDRINUSE, "host port {}/tcp on {} is already in use", p.host_port, p.host_addr);
    return sys::sys_error("binding host port {}/tcp on {}", p.host_port, p.host_addr);
  }
  if (::listen(s.get(), 128) != 0) return sys::sys_error("listening on host port {}", p.str());
  return s;
}

// One direction of a connection, until its end: then the other side is told (a half
// close), so a request-then-reply exchange still gets its reply.
// The pipe is widened to 1 MiB (the unprivileged limit, fs.pipe-max-size), as Go's
// splice does for rootlesskit: a 64 KiB one takes sixteen times the system calls and
// wake-ups for a bulk transfer.
void pump(int from, int to) noexcept {
  constexpr int kPipeBytes = 1 << 20;
  int p[2];
  if (::pipe2(p, O_CLOEXEC) == 0) {
    int room = ::fcntl(p[1], F_SETPIPE_SZ, kPipeBytes);
    std::size_t chunk = room > 0 ? static_cast<std::size_t>(room) : std::size_t{1} << 16;
    for (bool open = true; open;) {
      ssize_t n = ::splice(from, nullptr, p[1], nullptr, chunk, SPLICE_F_MOVE);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      while (n > 0) {
        ssize_t m = ::splice(p[0], nullptr, to, nullptr, static_cast<std::size_t>(n), SPLICE_F_MOVE);
        if (m < 0 && errno == EINTR) continue;
        if (m <= 0) {
          open = false;
          break;
        }
        n -= m;
      }
    }
    ::close(p[0]);
    ::close(p[1]);
  }
  ::shutdown(to, SHUT_WR);
  ::shutdown(from, SHUT_RD);
}

void serve(int client, std::uint16_t pod_port) noexcept {
  int pod = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(pod_port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (pod >= 0 && ::connect(pod, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    std::thread up(pump, client, pod);
    pump(pod, client);
    up.join();
  }
  if (pod >= 0) ::close(pod);
  ::close(client);
}

// The forwarder: in the pod's namespace (its listeners stay in ours), accepting for ever.
[[noreturn]] void forwarder_main(const std::vector<Listener>& ls, int netns, int ready) noexcept {
  if (::setns(netns, CLONE_NEWNET) != 0) ::_exit(1);
  ::close(netns);
  ::signal(SIGPIPE, SIG_IGN);
  char ok = 1;
  if (::write(ready, &ok, 1) != 1) ::_exit(1);
  ::close(ready);
  std::vector<pollfd> fds;
  for (const auto& l : ls) fds.push_back({l.fd, POLLIN, 0});
  for (;;) {
    if (::poll(fds.data(), fds.size(), -1) < 0) continue;
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (!(fds[i].revents & POLLIN)) continue;
      int c = ::accept4(fds[i].fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      try {
        std::thread(serve, c, ls[i].pod_port).detach();
      } catch (...) {
        ::close(c);  // no thread to be had: this connection is refused
      }
    }
  }
}

}  // namespace

sys::Result<pid_t> start_forwarder(const std::vector<PortForward>& ports, int netns_fd) {
  std::vector<sys::Fd> owned;
  std::vector<Listener> ls;
  for (const auto& p : ports) {
    if (p.proto != "tcp") continue;
    owned.push_back(POD_TRY(listen_on(p)));
    ls.push_back({owned.back().get(), p.pod_port});
  }
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) return sys::sys_error("pipe");
  sys::Fd ready_r(ready[0]), ready_w(ready[1]);
  pid_t pid = ::fork();
  if (pid < 0) return sys::sys_error("fork");
  if (pid == 0) {
    ::setsid();
    int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
      ::dup2(null, 0);
      ::dup2(null, 1);
      ::dup2(null, 2);
    }
    // Nothing of pod run's but its listeners, the namespace and the ready pipe (no store
    // lock, no terminal): it outlives a detached pod's `pod run`.
    std::vector<int> keep = {0, 1, 2, netns_fd, ready_w.get()};
    for (const auto& l : ls) keep.push_back(l.fd);
    sys::close_all_except(keep.data(), keep.size());
    forwarder_main(ls, netns_fd, ready_w.get());
  }
  ready_w.reset();
  char ok = 0;
  ssize_t n;
  while ((n = ::read(ready_r.get(), &ok, 1)) < 0 && errno == EINTR) {
  }
  if (n != 1) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return sys::make_error(EIO, "the port forwarder could not enter the pod's network namespace");
  }
  return pid;
}

}  // namespace pod::runtime::detail
