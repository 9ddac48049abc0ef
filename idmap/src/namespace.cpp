#include "pod/idmap/namespace.hpp"

#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include "pod/idmap/allotment.hpp"
#include "pod/sys/child.hpp"
#include "pod/sys/fs.hpp"

namespace pod::idmap {

using sys::Fd;
using sys::make_error;
using sys::sys_error;

MapAllowance allowance_for_caller(const Warn& warn) {
  MapAllowance a;
  a.own_uid = ::geteuid();
  a.own_gid = ::getegid();
  HostIds host = read_host_ids(warn);
  std::string name = std::to_string(a.own_uid);
  if (struct passwd* pw = ::getpwuid(a.own_uid)) name = pw->pw_name;
  for (auto r : ranges_for(host.subuid, name, a.own_uid)) a.uids.add(r);
  for (auto r : ranges_for(host.subgid, name, a.own_uid)) a.gids.add(r);
  a.uids.add(a.own_uid, std::uint64_t{a.own_uid} + 1);
  a.gids.add(a.own_gid, std::uint64_t{a.own_gid} + 1);
  return a;
}

Result<void> check_map(const IdMap& m, IdKind kind, MapWriter writer, const MapAllowance& allow) {
  POD_TRY(check_map_shape(m, kind));
  if (writer == MapWriter::direct) return {};
  const RangeSet& ok = kind == IdKind::uid ? allow.uids : allow.gids;
  RangeSet host = host_ids(m);  // named: a temporary would die before the loop (C++20 rules)
  for (auto& iv : host.intervals())
    if (auto miss = ok.first_missing(iv.start, iv.end))
      return make_error(EPERM, "{} {} on the host is not in your allotment ({})", kind_name(kind), *miss, ok.str());
  return {};
}

std::vector<std::string> helper_argv(const char* helper, pid_t pid, const IdMap& m) {
  std::vector<std::string> argv{helper, std::to_string(pid)};
  for (auto& e : m.extents) {
    argv.push_back(std::to_string(e.inner));
    argv.push_back(std::to_string(e.outer));
    argv.push_back(std::to_string(e.count));
  }
  return argv;
}

bool is_self_only(const IdMap& m, std::uint32_t own) {
  return m.extents.size() == 1 && m.extents[0].outer == own && m.extents[0].count == 1;
}

namespace {


Result<void> write_proc(pid_t pid, const char* file, const std::string& text) {
  std::string path = fmt::format("/proc/{}/{}", pid, file);
  Fd fd = POD_TRY(sys::open_at(sys::FdRef::cwd(), path, O_WRONLY));
  // One write: the kernel takes a map only whole, in a single write(2).
  ssize_t n = ::write(fd.get(), text.data(), text.size());
  if (n < 0) return sys_error("writing '{}'", path);
  if (static_cast<std::size_t>(n) != text.size()) return make_error(EIO, "short write to '{}'", path);
  return {};
}

}  // namespace

Result<MapPlan> plan_maps(pid_t pid, const IdMap& uids, const IdMap& gids, MapWriter writer,
                          const MapAllowance& allow) {
  POD_TRY(check_map(uids, IdKind::uid, writer, allow));
  POD_TRY(check_map(gids, IdKind::gid, writer, allow));
  MapPlan p;
  p.uid_text = uids.proc_text();
  p.gid_text = gids.proc_text();
  if (writer == MapWriter::helper) {
    if (!is_self_only(uids, allow.own_uid)) p.uid_helper = helper_argv("newuidmap", pid, uids);
    if (is_self_only(gids, allow.own_gid)) p.setgroups_deny = true;  // required before a direct gid_map write
    else p.gid_helper = helper_argv("newgidmap", pid, gids);
  }
  return p;
}

Result<void> write_maps(pid_t pid, const IdMap& uids, const IdMap& gids, MapWriter writer, const MapAllowance& allow) {
  MapPlan p = POD_TRY(plan_maps(pid, uids, gids, writer, allow));
  if (p.uid_helper.empty()) POD_TRY_CTX(write_proc(pid, "uid_map", p.uid_text), "uid map {}", uids.str());
  else POD_TRY_CTX(sys::run_program(p.uid_helper), "uid map {} (newuidmap)", uids.str());
  if (p.setgroups_deny) POD_TRY(write_proc(pid, "setgroups", "deny"));
  if (p.gid_helper.empty()) POD_TRY_CTX(write_proc(pid, "gid_map", p.gid_text), "gid map {}", gids.str());
  else POD_TRY_CTX(sys::run_program(p.gid_helper), "gid map {} (newgidmap)", gids.str());
  return {};
}

Result<UserNamespace> UserNamespace::create(const IdMap& uids, const IdMap& gids) {
  MapWriter writer = ::geteuid() == 0 ? MapWriter::direct : MapWriter::helper;
  MapAllowance allow;
  if (writer == MapWriter::helper) allow = allowance_for_caller(nullptr);
  // Refuse a bad map before any process exists.
  POD_TRY(plan_maps(0, uids, gids, writer, allow));

  int ready[2], go[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) return sys_error("pipe");
  Fd ready_r(ready[0]), ready_w(ready[1]);
  if (::pipe2(go, O_CLOEXEC) != 0) return sys_error("pipe");
  Fd go_r(go[0]), go_w(go[1]);
  pid_t pid = ::fork();
  if (pid < 0) return sys_error("fork");
  if (pid == 0) {
    // Only async-signal-safe calls here: report the errno, wait for the parent's EOF
    // (so our copy of the parent's end must go first).
    ::close(go_w.get());
    ::close(ready_r.get());
    int err = ::unshare(CLONE_NEWUSER) == 0 ? 0 : errno;
    (void)!::write(ready_w.get(), &err, sizeof err);
    char c;
    while (::read(go_r.get(), &c, 1) < 0 && errno == EINTR) {
    }
    ::_exit(err ? 1 : 0);
  }
  ready_w.reset();
  go_r.reset();
  auto reap = [pid] {
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
  };
  auto fail = [&](sys::Error e) -> Result<UserNamespace> {
    ::kill(pid, SIGKILL);
    reap();
    return sys::Unexpected(std::move(e).context("making a user namespace (uid {} gid {})", uids.str(), gids.str()));
  };
  int err = 0;
  ssize_t n;
  while ((n = ::read(ready_r.get(), &err, sizeof err)) < 0 && errno == EINTR) {
  }
  if (n != sizeof err) return fail(sys::Error{EIO, "the namespace child died"});
  if (err) return fail(sys::Error{err, "unshare(CLONE_NEWUSER)"});
  if (auto r = write_maps(pid, uids, gids, writer, allow); !r) return fail(r.error());
  auto fd = sys::open_at(sys::FdRef::cwd(), fmt::format("/proc/{}/ns/user", pid), O_RDONLY);
  if (!fd) return fail(fd.error());
  go_w.reset();  // the child sees EOF and exits; the fd keeps the namespace
  reap();
  return UserNamespace(std::move(*fd), uids, gids);
}

Result<void> UserNamespace::enter() const {
  if (::setns(fd_.get(), CLONE_NEWUSER) != 0) return sys_error("setns(CLONE_NEWUSER)");
  return {};
}

}  // namespace pod::idmap
