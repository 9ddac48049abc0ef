// Writing uid_map/gid_map, and user namespaces as objects held by an fd.
#pragma once

#include <sys/types.h>

#include "pod/idmap/ranges.hpp"
#include "pod/idmap/userns.hpp"
#include "pod/sys/fd.hpp"

namespace pod::idmap {

// How the maps of a process get written.
enum class MapWriter {
  direct,  // root (CAP_SETUID/CAP_SETGID over the parent namespace): /proc/PID/*_map
  helper,  // an ordinary user: newuidmap/newgidmap, or a direct write of a self-only map
};

// The host ids an ordinary user may map: their own id and their subordinate ranges.
struct MapAllowance {
  std::uint32_t own_uid = 0, own_gid = 0;
  RangeSet uids, gids;  // own id included
};
[[nodiscard]] MapAllowance allowance_for_caller(const Warn& warn);

// Checks `m` before anything is written: its shape (check_map_shape), and for a helper
// writer that every host id is allowed: "uid 0 on the host is not in your allotment".
[[nodiscard]] Result<void> check_map(const IdMap& m, IdKind kind, MapWriter writer, const MapAllowance& allow);

// True for a map of one id, the caller's own: unprivileged, the kernel takes it
// directly (gid maps only after "deny" in setgroups).
[[nodiscard]] bool is_self_only(const IdMap& m, std::uint32_t own);

// The argv of newuidmap/newgidmap (`helper`) setting `m` for `pid`.
[[nodiscard]] std::vector<std::string> helper_argv(const char* helper, pid_t pid, const IdMap& m);

// The plan for writing the maps of `pid`, as argv lists and files, checked before
// anything is done. `setgroups_deny` is set for a directly written self-only gid map.
struct MapPlan {
  bool setgroups_deny = false;
  std::vector<std::string> uid_helper, gid_helper;  // empty: write the file directly
  std::string uid_text, gid_text;
};
[[nodiscard]] Result<MapPlan> plan_maps(pid_t pid, const IdMap& uids, const IdMap& gids, MapWriter writer,
                                        const MapAllowance& allow);

// Writes the maps of `pid` (a process that has just unshared its user namespace).
[[nodiscard]] Result<void> write_maps(pid_t pid, const IdMap& uids, const IdMap& gids, MapWriter writer,
                                      const MapAllowance& allow);

// A user namespace with given maps, kept alive by an fd to it (no process stays in
// it). Usable for setns and as the userns_fd of an idmapped mount.
class UserNamespace {
 public:
  // Forks a child that unshares CLONE_NEWUSER and waits; the maps are written from
  // here; an fd to /proc/CHILD/ns/user is kept; the child then exits. The writer is
  // `direct` for root, else `helper`.
  [[nodiscard]] static Result<UserNamespace> create(const IdMap& uids, const IdMap& gids);

  [[nodiscard]] sys::FdRef fd() const { return fd_; }
  [[nodiscard]] const IdMap& uids() const { return uids_; }
  [[nodiscard]] const IdMap& gids() const { return gids_; }
  // setns into it: the caller must be single-threaded; afterwards it has every
  // capability in the namespace (the kernel grants them to its owner's processes).
  [[nodiscard]] Result<void> enter() const;

 private:
  UserNamespace(sys::Fd fd, IdMap uids, IdMap gids)
      : fd_(std::move(fd)), uids_(std::move(uids)), gids_(std::move(gids)) {}
  sys::Fd fd_;
  IdMap uids_, gids_;
};

}  // namespace pod::idmap
