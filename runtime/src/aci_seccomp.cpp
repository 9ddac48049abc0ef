// The seccomp groups of rkt's isolators and the filter of a retain-set or remove-set.
// rkt's lists are Docker's profile of 2016; each here also has the calls Linux added
// since that do what a listed call does (statx for stat, clone3 for clone, the new mount
// API for mount), so that a program built today is treated as one built then.
#include <seccomp.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "pod/runtime/aci_isolators.hpp"

namespace pod::runtime {

namespace {

constexpr const char* kBlacklist[] = {
    "acct", "add_key", "adjtimex", "bpf", "clock_adjtime", "clock_settime", "create_module", "delete_module",
    "finit_module", "get_kernel_syms", "get_mempolicy", "init_module", "ioperm", "iopl", "kcmp",
    "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mbind", "mount", "move_pages",
    "name_to_handle_at", "nfsservctl", "open_by_handle_at", "perf_event_open", "pivot_root", "process_vm_readv",
    "process_vm_writev", "ptrace", "query_module", "quotactl", "reboot", "request_key", "set_mempolicy", "setns",
    "settimeofday", "stime", "swapon", "swapoff", "sysfs", "_sysctl", "umount", "umount2", "unshare", "uselib",
    "userfaultfd", "ustat", "vm86", "vm86old",
    // since 2016
    "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr"};

constexpr const char* kWhitelist[] = {
    "accept", "accept4", "access", "alarm", "arch_prctl", "bind", "brk", "capget", "capset", "chdir", "chmod",
    "chown", "chown32", "chroot", "clock_getres", "clock_gettime", "clock_nanosleep", "clone", "close", "connect",
    "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl",
    "epoll_ctl_old", "epoll_pwait", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat",
    "exit", "exit_group", "faccessat", "fadvise64", "fadvise64_64", "fallocate", "fanotify_mark", "fchdir",
    "fchmod", "fchmodat", "fchown", "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync", "fgetxattr",
    "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs",
    "fstatfs64", "fsync", "ftruncate", "ftruncate64", "futex", "futimesat", "getcpu", "getcwd", "getdents",
    "getdents64", "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups",
    "getgroups32", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority",
    "getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit", "get_robust_list",
    "getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area", "gettid", "gettimeofday", "getuid",
    "getuid32", "getxattr", "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch",
    "io_cancel", "ioctl", "io_destroy", "io_getevents", "ioprio_get", "ioprio_set", "io_setup", "io_submit",
    "ipc", "kill", "lchown", "lchown32", "lgetxattr", "link", "linkat", "listen", "listxattr", "llistxattr",
    "_llseek", "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "madvise", "memfd_create", "mincore",
    "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "modify_ldt",
    "mprotect", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedsend", "mq_unlink",
    "mremap", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap", "nanosleep",
    "newfstatat", "_newselect", "open", "openat", "pause", "personality", "pipe", "pipe2", "poll", "ppoll",
    "prctl", "pread64", "preadv", "prlimit64", "pselect6", "pwrite64", "pwritev", "read", "readahead",
    "readlink", "readlinkat", "readv", "recv", "recvfrom", "recvmmsg", "recvmsg", "remap_file_pages",
    "removexattr", "rename", "renameat", "renameat2", "restart_syscall", "rmdir", "rt_sigaction",
    "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
    "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_get_priority_max",
    "sched_get_priority_min", "sched_getscheduler", "sched_rr_get_interval", "sched_setaffinity",
    "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl",
    "semget", "semop", "semtimedop", "send", "sendfile", "sendfile64", "sendmmsg", "sendmsg", "sendto",
    "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32",
    "setitimer", "setpgid", "setpriority", "setregid", "setregid32", "setresgid", "setresgid32", "setresuid",
    "setresuid32", "setreuid", "setreuid32", "setrlimit", "set_robust_list", "setsid", "setsockopt",
    "set_thread_area", "set_tid_address", "setuid", "setuid32", "setxattr", "shmat", "shmctl", "shmdt", "shmget",
    "shutdown", "sigaltstack", "signalfd", "signalfd4", "sigreturn", "socket", "socketcall", "socketpair",
    "splice", "stat", "stat64", "statfs", "statfs64", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs",
    "sysinfo", "syslog", "tee", "tgkill", "time", "timer_create", "timer_delete", "timerfd_create",
    "timerfd_gettime", "timerfd_settime", "timer_getoverrun", "timer_gettime", "timer_settime", "times", "tkill",
    "truncate", "truncate64", "ugetrlimit", "umask", "uname", "unlink", "unlinkat", "utime", "utimensat",
    "utimes", "vfork", "vmsplice", "wait4", "waitid", "waitpid", "write", "writev",
    // since 2016
    "statx", "clone3", "rseq", "faccessat2", "openat2", "close_range", "pidfd_open", "pidfd_send_signal",
    "epoll_pwait2", "preadv2", "pwritev2", "membarrier", "futex_waitv"};

// Always kept by a retain-set, as systemd (rkt's stage1) kept them: without them the
// app could not even be executed or end.
constexpr const char* kAlwaysRetained[] = {"execve", "exit", "exit_group", "rt_sigreturn", "sigreturn"};
// What pod calls after loading the filter when no_new_privs is off (detail::apply_security).
constexpr const char* kPodAfterFilter[] = {"prctl", "setgroups", "setresgid", "setresuid", "capset"};

template <std::size_t N>
std::vector<std::string> known(const char* const (&names)[N]) {
  std::vector<std::string> out;
  for (const char* n : names)
    if (::seccomp_syscall_resolve_name(n) != __NR_SCMP_ERROR) out.emplace_back(n);
  return out;
}

}  // namespace

std::optional<std::vector<std::string>> seccomp_group(std::string_view name) {
  if (name == "@rkt/default-blacklist" || name == "@docker/default-blacklist") return known(kBlacklist);
  if (name == "@rkt/default-whitelist" || name == "@docker/default-whitelist") return known(kWhitelist);
  return std::nullopt;
}

sys::Result<std::string> aci_seccomp_profile(const AciSeccomp& s, bool loaded_before_ids) {
  using nlohmann::json;
  std::vector<std::string> names = s.syscalls;
  if (s.retain) {
    names.insert(names.end(), std::begin(kAlwaysRetained), std::end(kAlwaysRetained));
    if (loaded_before_ids) names.insert(names.end(), std::begin(kPodAfterFilter), std::end(kPodAfterFilter));
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
  } else if (loaded_before_ids) {
    for (const char* n : kPodAfterFilter)
      if (std::find(names.begin(), names.end(), n) != names.end())
        return sys::make_error(EINVAL,
                               "the seccomp remove-set removes '{}', which pod calls after loading the filter "
                               "while no_new_privs is off; give --no-new-privileges",
                               n);
  }
  // Refused calls: an errno, or SIGSYS for the whole app (KILL_PROCESS: a thread alone
  // dying would leave the rest of the app hanging).
  json refused = s.errno_ret ? json("SCMP_ACT_ERRNO") : json("SCMP_ACT_KILL_PROCESS");
  json profile;
  if (s.retain) {
    profile = {{"defaultAction", refused}, {"syscalls", json::array({{{"names", names}, {"action", "SCMP_ACT_ALLOW"}}})}};
    if (s.errno_ret) profile["defaultErrnoRet"] = *s.errno_ret;
  } else {
    json rule = {{"names", names}, {"action", refused}};
    if (s.errno_ret) rule["errnoRet"] = *s.errno_ret;
    profile = {{"defaultAction", "SCMP_ACT_ALLOW"}, {"syscalls", json::array({rule})}};
  }
  return profile.dump();
}

}  // namespace pod::runtime
