// Preparing an app's security settings, and applying them in the app process.
#include "security.hpp"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>

#include "pod/sys/fs.hpp"
#include "spawn_proto.hpp"

namespace pod::runtime::detail {

namespace {

int last_cap() {
  auto text = sys::read_file(sys::FdRef::cwd(), "/proc/sys/kernel/cap_last_cap", 64);
  if (!text) return CAP_LAST_CAP;
  return std::atoi(text->c_str());
}

int load_filter(const std::vector<sock_filter>& f) noexcept {
  sock_fprog prog{};
  prog.len = static_cast<unsigned short>(f.size());
  prog.filter = const_cast<sock_filter*>(f.data());
  return static_cast<int>(::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog));
}

}  // namespace

sys::Result<PreparedSecurity> prepare_security(const Security& s) {
  PreparedSecurity p;
  p.last_cap = last_cap();
  for (int c : s.caps) {
    if (c < 0 || c > 63) return sys::make_error(EINVAL, "capability number {} is out of range", c);
    if (c > p.last_cap)
      return sys::make_error(EINVAL, "{} is not known to this kernel (its last capability is {})", cap_name(c),
                             p.last_cap);
    p.caps |= std::uint64_t{1} << c;
  }
  p.no_new_privs = s.no_new_privs;
  p.filter = POD_TRY_CTX(seccomp_program(s), "seccomp profile");
  if (p.filter.size() > BPF_MAXINSNS)
    return sys::make_error(E2BIG, "seccomp profile: {} BPF instructions, the kernel takes {}", p.filter.size(),
                           BPF_MAXINSNS);
  p.rlimits = s.rlimits;
  if (s.oom_score_adj) {
    if (*s.oom_score_adj < -1000 || *s.oom_score_adj > 1000)
      return sys::make_error(EINVAL, "oom_score_adj {} is not in -1000..1000", *s.oom_score_adj);
    p.set_oom = true;
    p.oom_len = static_cast<std::size_t>(std::snprintf(p.oom_text, sizeof p.oom_text, "%d\n", *s.oom_score_adj));
  }
  return p;
}

int apply_security(const PreparedSecurity& s, const AppIds& ids, int* err) noexcept {
  auto fail = [&](int step) {
    *err = errno;
    return step;
  };
  for (const auto& r : s.rlimits) {
    rlimit rl{r.soft, r.hard};
    if (::setrlimit(static_cast<__rlimit_resource>(r.resource), &rl) != 0) return fail(kStepRlimits);
  }
  if (s.set_oom) {
    // Not dumpable (the init's state), /proc/self belongs to root of the user namespace
    // our memory was made in: the host's, since the app was forked, not executed, in the
    // pod; the pod cannot open it. Dumpable just for the open (exec makes the app
    // dumpable anyway); ptrace would still need our whole capability set.
    if (::prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0) return fail(kStepOomScore);
    int fd = ::open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    int open_errno = errno;
    if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
      if (fd >= 0) ::close(fd);
      return fail(kStepOomScore);
    }
    errno = open_errno;
    if (fd < 0) return fail(kStepOomScore);
    bool ok = ::write(fd, s.oom_text, s.oom_len) == static_cast<ssize_t>(s.oom_len);
    int e = errno;
    ::close(fd);
    errno = e;
    if (!ok) return fail(kStepOomScore);
  }
  // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it while we have it.
  if (!s.no_new_privs && !s.filter.empty() && load_filter(s.filter) != 0) return fail(kStepSeccomp);
  for (int c = 0; c <= s.last_cap; ++c)
    if (!(s.caps & (std::uint64_t{1} << c)) && ::prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno != EINVAL)
      return fail(kStepCapBounding);
  if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return fail(kStepCaps);
  // A user namespace whose setgroups is "deny" refuses even an empty list: then the
  // app keeps no extra groups anyway only if none were asked for.
  if (::setgroups(ids.ngroups, ids.groups) != 0 && !(errno == EPERM && ids.ngroups == 0)) return fail(kStepGroups);
  if (::setresgid(ids.gid, ids.gid, ids.gid) != 0) return fail(kStepSetgid);
  if (::setresuid(ids.uid, ids.uid, ids.uid) != 0) return fail(kStepSetuid);
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  for (int i = 0; i < 2; ++i) {
    auto part = static_cast<std::uint32_t>(s.caps >> (32 * i));
    data[i].effective = data[i].permitted = data[i].inheritable = part;
  }
  if (::syscall(SYS_capset, &hdr, data) != 0) return fail(kStepCaps);
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) return fail(kStepAmbient);
  // exec gives root its bounding set back; anyone else keeps capabilities only as ambient.
  if (ids.uid != 0)
    for (int c = 0; c <= s.last_cap; ++c)
      if ((s.caps & (std::uint64_t{1} << c)) && ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) != 0)
        return fail(kStepAmbient);
  if (::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) return fail(kStepCaps);
  if (s.no_new_privs && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return fail(kStepNoNewPrivs);
  if (s.no_new_privs && !s.filter.empty() && load_filter(s.filter) != 0) return fail(kStepSeccomp);
  return 0;
}

}  // namespace pod::runtime::detail
