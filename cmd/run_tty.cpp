// pod run -t: our terminal in raw mode, bytes relayed to and from the pod's own pty,
// window size passed on. The pod never gets our terminal, so TIOCSTI inside reaches
// only its own pty.
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include "run_setup.hpp"

namespace pod::cmd {

namespace {

struct RawMode {
  termios saved{};
  bool active = false;
  RawMode() {
    if (::isatty(0) && ::tcgetattr(0, &saved) == 0) {
      termios raw = saved;
      ::cfmakeraw(&raw);
      active = ::tcsetattr(0, TCSANOW, &raw) == 0;
    }
  }
  ~RawMode() {
    if (active) ::tcsetattr(0, TCSANOW, &saved);
  }
};

void pass_window_size(int master) {
  winsize ws{};
  if (::ioctl(0, TIOCGWINSZ, &ws) == 0) ::ioctl(master, TIOCSWINSZ, &ws);
}

// Copies what is readable on `from` to `to`; false at end of file or error.
bool pump(int from, int to) {
  char buf[16384];
  ssize_t n = ::read(from, buf, sizeof buf);
  if (n <= 0) return false;
  for (ssize_t off = 0; off < n;) {
    ssize_t w = ::write(to, buf + off, static_cast<std::size_t>(n - off));
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    off += w;
  }
  return true;
}

}  // namespace

sys::Result<sys::ExitStatus> relay_tty(runtime::RunningPod& pod) {
  int master = pod.pty_master().get();
  if (master < 0) return sys::make_error(EIO, "the pod has no pty");
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGWINCH}) sigaddset(&set, s);
  if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0) return sys::sys_error("sigprocmask");
  sys::Fd sfd(::signalfd(-1, &set, SFD_CLOEXEC));
  if (!sfd) return sys::sys_error("signalfd");
  pass_window_size(master);
  RawMode raw;
  bool in_open = true, out_open = true;
  for (;;) {
    pollfd fds[4] = {{pod.pidfd().get(), POLLIN, 0},
                     {sfd.get(), POLLIN, 0},
                     {out_open ? master : -1, POLLIN, 0},
                     {in_open ? 0 : -1, POLLIN, 0}};
    if (::poll(fds, 4, -1) < 0) {
      if (errno == EINTR) continue;
      return sys::sys_error("poll");
    }
    if (fds[2].revents & (POLLIN | POLLHUP)) out_open = pump(master, 1);
    if (fds[3].revents & (POLLIN | POLLHUP)) in_open = pump(0, master);
    if (fds[1].revents & POLLIN) {
      signalfd_siginfo si{};
      if (::read(sfd.get(), &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGWINCH) pass_window_size(master);
        else (void)pod.signal(static_cast<int>(si.ssi_signo));
      }
    }
    if (fds[0].revents & POLLIN) {
      // Drain what the app wrote last before it ended.
      while (out_open) {
        pollfd p{master, POLLIN, 0};
        if (::poll(&p, 1, 0) <= 0 || !(p.revents & POLLIN)) break;
        out_open = pump(master, 1);
      }
      return pod.wait();
    }
  }
}

}  // namespace pod::cmd
