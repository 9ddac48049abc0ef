#include "pod/idmap/userns_keeper.hpp"

#include <linux/nsfs.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <ctime>
#include <tuple>

#include <fmt/format.h>

#include "pod/sys/fs.hpp"

namespace pod::idmap {

namespace {

constexpr std::string_view kPidName = "userns.pid";

std::string_view dir_of(const std::string& pidfile) {
  return std::string_view(pidfile).substr(0, pidfile.rfind('/'));
}

// "0 1001 1\n1 100000 65536\n" as /proc/PID/uid_map prints it, as sorted extents.
std::vector<std::tuple<std::uint32_t, std::uint32_t, std::uint32_t>> parse_proc_map(std::string_view text) {
  std::vector<std::tuple<std::uint32_t, std::uint32_t, std::uint32_t>> out;
  std::uint32_t v[3];
  int i = 0;
  const char* p = text.data();
  const char* end = p + text.size();
  while (p < end) {
    if (*p == ' ' || *p == '\n') {
      ++p;
      continue;
    }
    auto [next, ec] = std::from_chars(p, end, v[i]);
    if (ec != std::errc()) return {};
    p = next;
    if (++i == 3) {
      out.emplace_back(v[0], v[1], v[2]);
      i = 0;
    }
  }
  if (i != 0) return {};
  std::sort(out.begin(), out.end());
  return out;
}

bool same_map(std::string_view proc_text, const IdMap& want) {
  std::vector<std::tuple<std::uint32_t, std::uint32_t, std::uint32_t>> w;
  for (auto& e : want.extents) w.emplace_back(e.inner, e.outer, e.count);
  std::sort(w.begin(), w.end());
  return !w.empty() && parse_proc_map(proc_text) == w;
}

bool same_inode(int fd, const char* path) {
  struct stat a{}, b{};
  return ::fstat(fd, &a) == 0 && ::stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

// The namespace of `pid` when it is exactly the one enter_user_namespace(m) would make.
Result<sys::Fd> matching_namespace(pid_t pid, const StoreMapping& m) {
  auto fail = [] { return sys::make_error(ESRCH, "no kept namespace"); };
  // The pidfd pins the process: if it is still alive after the checks, every /proc/PID
  // file read below was its own and not a later process's with a recycled pid.
  sys::Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd) return fail();
  std::string proc = fmt::format("/proc/{}", pid);
  auto ns = sys::open_at(sys::FdRef::cwd(), proc + "/ns/user", O_RDONLY);
  if (!ns) return fail();
  uid_t owner = 0;
  if (::ioctl(ns->get(), NS_GET_OWNER_UID, &owner) != 0 || owner != ::getuid()) return fail();
  sys::Fd parent(::ioctl(ns->get(), NS_GET_PARENT));
  if (!parent || !same_inode(parent.get(), "/proc/self/ns/user")) return fail();
  auto uids = sys::read_file(sys::FdRef::cwd(), proc + "/uid_map", 4096);
  auto gids = sys::read_file(sys::FdRef::cwd(), proc + "/gid_map", 4096);
  auto groups = sys::read_file(sys::FdRef::cwd(), proc + "/setgroups", 64);
  if (!uids || !gids || !groups || !same_map(*uids, m.uids) || !same_map(*gids, m.gids) || *groups != "allow\n")
    return fail();
  if (::syscall(SYS_pidfd_send_signal, pidfd.get(), 0, nullptr, 0) != 0) return fail();
  return std::move(*ns);
}

// The keeper's life: signals only, no files, until unused for `idle`. Joiners renew it by
// touching the pid file; its mtime is the last join.
[[noreturn]] void keep(const std::string& pidfile, std::chrono::seconds idle) {
  ::setsid();
  (void)!::chdir("/");
  ::close_range(0, ~0U, 0);
  ::prctl(PR_SET_NAME, "pod-userns", 0, 0, 0);
  sigset_t all;
  sigfillset(&all);
  ::sigprocmask(SIG_SETMASK, &all, nullptr);
  for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);

  std::string pid_text = fmt::format("{}\n", ::getpid());
  auto dir = sys::open_dir(sys::FdRef::cwd(), dir_of(pidfile));
  if (!dir || !sys::write_file_atomic(*dir, kPidName, pid_text, 0600, sys::Sync::no)) ::_exit(1);
  dir->reset();

  sigset_t stop;
  sigemptyset(&stop);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&stop, sig);
  std::time_t wait = idle.count();
  for (;;) {
    timespec ts{wait, 0};
    int sig = ::sigtimedwait(&stop, nullptr, &ts);
    if (sig < 0 && errno == EINTR) continue;
    // Still ours? A later keeper may have taken the file over, or the runtime dir be gone.
    auto text = sys::read_file(sys::FdRef::cwd(), pidfile, 64);
    bool ours = text && *text == pid_text;
    struct stat st{};
    if (sig > 0 || !ours || ::stat(pidfile.c_str(), &st) != 0) {
      if (ours) ::unlink(pidfile.c_str());
      ::_exit(0);
    }
    std::time_t unused = std::time(nullptr) - st.st_mtim.tv_sec;
    if (unused >= idle.count()) {
      ::unlink(pidfile.c_str());
      ::_exit(0);
    }
    wait = idle.count() - unused;
  }
}

}  // namespace

std::string keeper_pidfile() {
  const char* run = std::getenv("XDG_RUNTIME_DIR");
  if (!run || run[0] != '/') return {};
  return fmt::format("{}/pod/{}", run, kPidName);
}

Result<bool> join_kept_namespace(const std::string& pidfile, const StoreMapping& m) {
  if (pidfile.empty() || !m.subordinate) return false;
  auto text = sys::read_file(sys::FdRef::cwd(), pidfile, 64);
  if (!text) return false;
  int pid = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), pid);
  if (ec != std::errc() || pid <= 1) return false;
  auto ns = matching_namespace(pid, m);
  if (!ns) return false;
  if (::setns(ns->get(), CLONE_NEWUSER) != 0) return false;
  ::utimensat(AT_FDCWD, pidfile.c_str(), nullptr, 0);  // renews the keeper's idle time
  POD_TRY(become_namespace_root());
  return true;
}

void start_keeper(const std::string& pidfile, std::chrono::seconds idle) {
  if (pidfile.empty()) return;
  auto dir = sys::make_dirs(dir_of(pidfile), 0700);
  if (!dir) return;
  dir->reset();
  // Twice: the keeper is nobody's child here, so no later wait for our children meets it.
  pid_t middle = ::fork();
  if (middle < 0) return;
  if (middle == 0) {
    pid_t keeper = ::fork();
    if (keeper == 0) keep(pidfile, idle);
    ::_exit(keeper > 0 ? 0 : 1);
  }
  int status = 0;
  while (::waitpid(middle, &status, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace pod::idmap
