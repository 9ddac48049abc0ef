// Seccomp programs: the default profile (Docker's denials for unprivileged containers)
// and OCI profiles from a file, built with libseccomp and exported as BPF.
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>

#include "pod/sys/fs.hpp"
#include "security.hpp"

namespace pod::runtime::detail {

namespace {

using json = nlohmann::json;

constexpr const char* kDenied[] = {
    "acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module", "delete_module",
    "finit_module", "get_kernel_syms", "get_mempolicy", "init_module", "ioperm", "iopl", "kcmp",
    "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mbind", "mount", "move_pages",
    "name_to_handle_at", "nfsservctl", "open_by_handle_at", "perf_event_open", "pivot_root",
    "process_vm_readv", "process_vm_writev", "ptrace", "query_module", "quotactl", "reboot",
    "request_key", "set_mempolicy", "setns", "settimeofday", "stime", "swapon", "swapoff", "sysfs",
    "_sysctl", "umount", "umount2", "unshare", "uselib", "userfaultfd", "ustat", "vm86", "vm86old",
    "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr"};

// personality(2) values allowed, as Docker: PER_LINUX, PER_LINUX32, UNAME26 variants, query.
constexpr std::uint32_t kPersonalities[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffff};

struct CtxFree {
  void operator()(void* c) const { ::seccomp_release(c); }
};
using Ctx = std::unique_ptr<void, CtxFree>;

sys::Result<Ctx> new_ctx(std::uint32_t default_action) {
  Ctx ctx(::seccomp_init(default_action));
  if (!ctx) return sys::make_error(EINVAL, "seccomp_init");
  // Only the native ABI: x32 and foreign-arch system calls kill the process.
  if (int rc = ::seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS); rc < 0)
    return sys::make_error(-rc, "seccomp: bad-arch action");
  return ctx;
}

sys::Result<std::vector<sock_filter>> export_bpf(const Ctx& ctx) {
  sys::Fd mem(::memfd_create("pod-seccomp", MFD_CLOEXEC));
  if (!mem) return sys::sys_error("memfd_create");
  if (int rc = ::seccomp_export_bpf(ctx.get(), mem.get()); rc < 0)
    return sys::make_error(-rc, "seccomp_export_bpf");
  if (::lseek(mem.get(), 0, SEEK_SET) != 0) return sys::sys_error("lseek");
  std::string raw = POD_TRY(sys::read_fd(mem, 1 << 20));
  if (raw.size() % sizeof(sock_filter) != 0) return sys::make_error(EINVAL, "seccomp: odd BPF size {}", raw.size());
  std::vector<sock_filter> prog(raw.size() / sizeof(sock_filter));
  std::memcpy(prog.data(), raw.data(), raw.size());
  return prog;
}

// Checks personality(2)'s argument before the libseccomp program (which cannot say
// "none of these values" for an allow-by-default filter).
std::vector<sock_filter> personality_prefix() {
  const std::uint32_t arch = ::seccomp_arch_native();  // SCMP_ARCH_* are AUDIT_ARCH_* values
  const auto n = static_cast<unsigned char>(std::size(kPersonalities));
  std::vector<sock_filter> p;
  // Jump offsets count from the next instruction; the prefix is 7 + n long and a miss
  // on arch or nr falls through to the libseccomp program right after it.
  p.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)));
  p.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, arch, 0, static_cast<unsigned char>(5 + n)));
  p.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)));
  p.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_personality, 0, static_cast<unsigned char>(3 + n)));
  p.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[0])));  // low half: an unsigned int
  for (unsigned char i = 0; i < n; ++i)
    p.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kPersonalities[i], static_cast<unsigned char>(n - i), 0));
  p.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)));
  p.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  return p;
}

sys::Result<std::vector<sock_filter>> default_profile() {
  Ctx ctx = POD_TRY(new_ctx(SCMP_ACT_ALLOW));
  for (const char* name : kDenied) {
    int nr = ::seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;  // unknown to this libseccomp
    int rc = ::seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EPERM), nr, 0);
    if (rc < 0 && nr >= 0) return sys::make_error(-rc, "seccomp: denying {}", name);
  }
  auto rest = POD_TRY(export_bpf(ctx));
  auto prog = personality_prefix();
  prog.insert(prog.end(), rest.begin(), rest.end());
  return prog;
}

sys::Result<std::uint32_t> oci_action(const json& j, std::string_view where, const json* errno_ret) {
  if (!j.is_string()) return sys::make_error(EINVAL, "{}: the action is not a string", where);
  auto a = j.get<std::string>();
  int err = EPERM;
  if (errno_ret && !errno_ret->is_null()) {
    if (!errno_ret->is_number_unsigned()) return sys::make_error(EINVAL, "{}: errnoRet is not a number", where);
    err = errno_ret->get<int>();
  }
  if (a == "SCMP_ACT_ALLOW") return SCMP_ACT_ALLOW;
  if (a == "SCMP_ACT_ERRNO") return SCMP_ACT_ERRNO(static_cast<std::uint32_t>(err));
  if (a == "SCMP_ACT_KILL" || a == "SCMP_ACT_KILL_THREAD") return SCMP_ACT_KILL;
  if (a == "SCMP_ACT_KILL_PROCESS") return SCMP_ACT_KILL_PROCESS;
  if (a == "SCMP_ACT_LOG") return SCMP_ACT_LOG;
  if (a == "SCMP_ACT_TRAP") return SCMP_ACT_TRAP;
  return sys::make_error(EINVAL, "{}: action '{}' is not supported (SCMP_ACT_ALLOW, _ERRNO, _KILL, _KILL_PROCESS, "
                         "_LOG, _TRAP)", where, a);
}

}  // namespace

sys::Result<std::vector<sock_filter>> seccomp_from_oci(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return sys::make_error(EINVAL, "not a JSON object");
  if (!j.contains("defaultAction")) return sys::make_error(EINVAL, "no defaultAction");
  std::uint32_t def = POD_TRY(oci_action(j["defaultAction"], "defaultAction",
                                         j.contains("defaultErrnoRet") ? &j["defaultErrnoRet"] : nullptr));
  Ctx ctx = POD_TRY(new_ctx(def));
  if (j.contains("architectures") && !j["architectures"].is_null() && !j["architectures"].empty())
    return sys::make_error(EINVAL, "architectures: only the native one is supported; remove the field");
  const json& calls = j.contains("syscalls") ? j["syscalls"] : json::array();
  if (!calls.is_array()) return sys::make_error(EINVAL, "syscalls is not an array");
  for (std::size_t i = 0; i < calls.size(); ++i) {
    const json& rule = calls[i];
    std::string where = fmt::format("syscalls[{}]", i);
    if (!rule.is_object()) return sys::make_error(EINVAL, "{} is not an object", where);
    if (rule.contains("args") && !rule["args"].is_null() && !rule["args"].empty())
      return sys::make_error(EINVAL, "{}: rules with args are not supported", where);
    if (!rule.contains("names") || !rule["names"].is_array() || !rule.contains("action"))
      return sys::make_error(EINVAL, "{}: needs names (an array) and action", where);
    std::uint32_t act =
        POD_TRY(oci_action(rule["action"], where, rule.contains("errnoRet") ? &rule["errnoRet"] : nullptr));
    for (const auto& n : rule["names"]) {
      if (!n.is_string()) return sys::make_error(EINVAL, "{}: a name is not a string", where);
      auto name = n.get<std::string>();
      int nr = ::seccomp_syscall_resolve_name(name.c_str());
      if (nr == __NR_SCMP_ERROR) return sys::make_error(EINVAL, "{}: unknown system call '{}'", where, name);
      if (act == def) continue;  // libseccomp refuses a rule that repeats the default
      int rc = ::seccomp_rule_add(ctx.get(), act, nr, 0);
      if (rc < 0 && nr >= 0) return sys::make_error(-rc, "{}: adding '{}'", where, name);
    }
  }
  return export_bpf(ctx);
}

sys::Result<std::vector<sock_filter>> seccomp_program(const Security& s) {
  switch (s.seccomp) {
    case Security::Seccomp::unconfined:
      return std::vector<sock_filter>{};
    case Security::Seccomp::default_profile:
      return default_profile();
    case Security::Seccomp::file:
      return seccomp_from_oci(s.seccomp_file);
  }
  return sys::make_error(EINVAL, "unknown seccomp mode");
}

}  // namespace pod::runtime::detail
