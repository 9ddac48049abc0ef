#include "pod/idmap/userns.hpp"

#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <optional>
#include <tuple>

#include <fmt/format.h>

#include "pod/idmap/namespace.hpp"
#include "pod/sys/child.hpp"
#include "pod/sys/fs.hpp"

namespace pod::idmap {

using sys::make_error;
using sys::sys_error;

std::string IdMap::proc_text() const {
  std::string out;
  for (auto& e : extents) out += fmt::format("{} {} {}\n", e.inner, e.outer, e.count);
  return out;
}

std::string IdMap::str() const {
  std::string out;
  for (auto& e : extents) out += fmt::format("{}{}:{}:{}", out.empty() ? "" : ",", e.inner, e.outer, e.count);
  return out;
}

std::uint64_t IdMap::size() const {
  std::uint64_t n = 0;
  for (auto& e : extents) n += e.count;
  return n;
}

std::string StoreMapping::describe() const {
  return fmt::format("userns uid {} gid {}", uids.str(), gids.str());
}

namespace {

constexpr std::size_t kSubidLimit = 4 << 20;

IdMap build_map(std::uint32_t own, const std::vector<IdRange>& ranges) {
  IdMap m;
  m.extents.push_back({0, own, 1});
  std::uint64_t next = 1;
  for (auto& r : ranges) {
    if (r.start <= own && own - r.start < r.count) continue;  // would map our own id twice
    if (next + r.count > UINT32_MAX) break;
    m.extents.push_back({static_cast<std::uint32_t>(next), r.start, r.count});
    next += r.count;
  }
  return m;
}

std::vector<IdRange> ranges_from(const char* file, const std::string& user, uid_t id, const Warn& warn) {
  auto text = sys::read_file(sys::FdRef::cwd(), file, kSubidLimit);
  if (!text) return {};  // no file: no ranges
  return ranges_for(parse_subid(*text, file, warn), user, id);
}

Result<void> write_proc(const char* file, const std::string& text) {
  auto fd = sys::open_at(sys::FdRef::cwd(), file, O_WRONLY);
  if (!fd) return sys::Unexpected(std::move(fd.error()));
  if (::write(fd->get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    return sys_error("writing '{}'", file);
  return {};
}


}  // namespace

Result<StoreMapping> store_mapping_for_caller(const Warn& warn) {
  uid_t uid = ::getuid();
  gid_t gid = ::getgid();
  // Asked more than once by one command (pod run: its maps, then the namespace): the
  // user database and /etc/subuid are read once per caller.
  static std::optional<std::tuple<uid_t, gid_t, StoreMapping>> last;
  if (last && std::get<0>(*last) == uid && std::get<1>(*last) == gid) return std::get<2>(*last);
  struct passwd* pw = ::getpwuid(uid);
  std::string user = pw ? pw->pw_name : std::to_string(uid);
  StoreMapping m;
  auto uranges = ranges_from("/etc/subuid", user, uid, warn);
  auto granges = ranges_from("/etc/subgid", user, uid, warn);
  m.uids = build_map(uid, uranges);
  m.gids = build_map(gid, granges);
  m.subordinate = m.uids.extents.size() > 1 && m.gids.extents.size() > 1;
  if (!m.subordinate) {  // one side alone is no use: map only our own ids
    m.uids.extents.resize(1);
    m.gids.extents.resize(1);
  }
  last.emplace(uid, gid, m);
  return m;
}

Result<void> enter_user_namespace(const StoreMapping& m) {
  if (!m.subordinate) {
    if (::unshare(CLONE_NEWUSER) != 0) return sys_error("unshare(CLONE_NEWUSER)");
    POD_TRY(write_proc("/proc/self/setgroups", "deny"));
    POD_TRY_CTX(write_proc("/proc/self/uid_map", m.uids.proc_text()), "mapping uid {}", m.uids.extents[0].outer);
    POD_TRY_CTX(write_proc("/proc/self/gid_map", m.gids.proc_text()), "mapping gid {}", m.gids.extents[0].outer);
    return {};
  }
  // newuidmap must run outside the new namespace (a setuid program is not setuid in a
  // namespace that does not map its owner), so a helper child waits for us to unshare.
  pid_t self = ::getpid();
  auto uargv = helper_argv("newuidmap", self, m.uids);
  auto gargv = helper_argv("newgidmap", self, m.gids);
  int go[2], done[2];
  if (::pipe2(go, O_CLOEXEC) != 0 || ::pipe2(done, O_CLOEXEC) != 0) return sys_error("pipe");
  sys::Fd go_r(go[0]), go_w(go[1]), done_r(done[0]), done_w(done[1]);
  pid_t helper = ::fork();
  if (helper < 0) return sys_error("fork");
  if (helper == 0) {
    go_w.reset();
    done_r.reset();
    char c = 0;
    ssize_t n = ::read(go_r.get(), &c, 1);
    std::string report;
    if (n == 1 && c == 'g') {
      // Both at once: each is a setuid program's whole start-up, on the path of every pod run.
      auto u = sys::Child::spawn(uargv, {});
      auto g = sys::Child::spawn(gargv, {});
      for (auto* child : {&u, &g}) {
        if (!*child) {
          if (report.empty()) report = child->error().what();
          continue;
        }
        auto st = (*child)->wait();
        if (!st) report = st.error().what();
        else if (!st->success() && report.empty())
          report = fmt::format("'{}' failed: {}", child == &u ? uargv[0] : gargv[0], st->describe());
      }
    }
    (void)!::write(done_w.get(), report.data(), report.size());
    ::_exit(report.empty() ? 0 : 1);
  }
  go_r.reset();
  done_w.reset();
  int unshare_errno = ::unshare(CLONE_NEWUSER) == 0 ? 0 : errno;
  char signal = unshare_errno ? 'x' : 'g';
  (void)!::write(go_w.get(), &signal, 1);
  go_w.reset();
  auto report = sys::read_fd(done_r, 1 << 16);
  int status = 0;
  while (::waitpid(helper, &status, 0) < 0 && errno == EINTR) {
  }
  if (unshare_errno) return make_error(unshare_errno, "unshare(CLONE_NEWUSER)");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return make_error(EPERM, "setting up the store's user namespace ({}): {}", m.describe(),
                      report && !report->empty() ? *report : "newuidmap/newgidmap failed");
  return become_namespace_root();
}

Result<void> become_namespace_root() {
  // Supplementary groups are unmapped here (shown as nogroup); drop them.
  if (::setgroups(0, nullptr) != 0) return sys_error("setgroups");
  if (::setresgid(0, 0, 0) != 0 || ::setresuid(0, 0, 0) != 0) return sys_error("becoming root in the user namespace");
  return {};
}

}  // namespace pod::idmap
