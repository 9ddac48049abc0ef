// An app's security settings made ready in the caller (capability masks, the seccomp
// program as BPF, rlimits), and applied in the app process right before exec without
// allocating: raw prctl/capset/seccomp calls only.
#pragma once

#include <linux/filter.h>
#include <sys/types.h>

#include <cstdint>
#include <string_view>
#include <vector>

#include "pod/runtime/spec.hpp"

namespace pod::runtime::detail {

struct PreparedSecurity {
  std::uint64_t caps = 0;  // bit N: CAP N kept
  int last_cap = 40;       // /proc/sys/kernel/cap_last_cap
  bool no_new_privs = true;
  std::vector<sock_filter> filter;  // empty: no seccomp filter
  std::vector<Rlimit> rlimits;
  bool set_oom = false;
  char oom_text[16] = {};  // "-500\n"
  std::size_t oom_len = 0;
};

[[nodiscard]] sys::Result<PreparedSecurity> prepare_security(const Security& s);

// The seccomp program for `s` (empty for unconfined). Built with libseccomp and
// exported as BPF here, so the app process only has to load it.
[[nodiscard]] sys::Result<std::vector<sock_filter>> seccomp_program(const Security& s);
// An OCI-runtime-spec "seccomp" object: defaultAction, syscalls[{names, action, errnoRet}].
[[nodiscard]] sys::Result<std::vector<sock_filter>> seccomp_from_oci(std::string_view json);

struct AppIds {
  uid_t uid = 0;
  gid_t gid = 0;
  const gid_t* groups = nullptr;
  std::size_t ngroups = 0;
};

// In the app process, as root of the pod's user namespace with every capability
// there: rlimits, oom score, the bounding set, ids, capability sets, ambient set,
// no_new_privs and seccomp last (first of these when no_new_privs is off, since then
// loading a filter needs CAP_SYS_ADMIN). Returns 0 or the failed Step, errno in *err.
[[nodiscard]] int apply_security(const PreparedSecurity& s, const AppIds& ids, int* err) noexcept;

}  // namespace pod::runtime::detail
