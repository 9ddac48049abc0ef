// A process that keeps an ordinary user's store namespace alive between pod commands,
// as podman's pause process does, but gone after a while unused. Joining it costs one
// setns; making the namespace anew costs newuidmap and newgidmap, two setuid programs
// started on every command (some 6 ms of a 20 ms `pod run`).
#pragma once

#include <chrono>
#include <string>

#include "pod/idmap/userns.hpp"

namespace pod::idmap {

// $XDG_RUNTIME_DIR/pod/userns.pid; empty without XDG_RUNTIME_DIR (then every command
// makes its namespace anew).
[[nodiscard]] std::string keeper_pidfile();

// Joins the namespace of the process the pid file names when that namespace is exactly
// what enter_user_namespace(m) would make: owned by the caller, a child of the caller's
// namespace, with m's uid and gid maps and setgroups allowed. Then the caller is uid 0 and
// gid 0 inside, as after enter_user_namespace, and the keeper's idle time starts again.
// False, with nothing changed, when there is no such process.
[[nodiscard]] Result<bool> join_kept_namespace(const std::string& pidfile, const StoreMapping& m);

// Called right after enter_user_namespace(m): leaves a detached process in the namespace
// (named pod-userns, no open files, cwd /, its own session) that writes its pid to
// `pidfile` and exits once nobody has joined it for `idle`, or on SIGTERM, SIGINT or
// SIGHUP. Best effort: a failure only means the next command makes its own namespace.
void start_keeper(const std::string& pidfile, std::chrono::seconds idle);

}  // namespace pod::idmap
