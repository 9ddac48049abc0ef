// Pods on disk: STORE/pods/<uuid>/ holds pod.json (the record, written atomically),
// lock (held by the pod's init while it runs), status.json (written by the init when
// it ends), upper/ and work/ (the writable layer), rootfs/ (a mount point) and ns/.
// The state is read from these, never trusted from a field alone:
//   prepared  pod.json without a pid: being set up (or abandoned by a killed `pod run`)
//   running   the lock is held
//   exited    the lock is free and the pod had started (status.json, or killed)
//   garbage   renamed to pods/.garbage-<uuid> by rm or gc, being removed
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pod/runtime/net.hpp"
#include "pod/runtime/spawn.hpp"
#include "pod/runtime/spec.hpp"
#include "pod/sys/error.hpp"
#include "pod/sys/fd.hpp"

namespace pod::runtime {

enum class PodState { prepared, running, exited, garbage };
[[nodiscard]] const char* state_name(PodState s);

struct AppRecord {
  App app;                 // argv, env, workdir, ids, security: what `pod enter` applies
  std::string image;       // name:tag or digest as given
  std::string image_digest;  // the manifest digest
  pid_t pid = 0;           // in the host's pid namespace, once started
  std::uint64_t start_time = 0;  // of that pid, against pid reuse (0: unknown; `pod enter`
                                 // then checks that the app's parent is the pod's init)
};

struct PodRecord {
  std::string uuid, name, hostname, created;  // created: RFC 3339 UTC
  std::vector<AppRecord> apps;
  idmap::IdMap uids, gids;  // the pod's maps in host ids
  std::string userns;       // keep|auto|pick|host|map, as chosen
  std::string lease;        // the ledger lease the pod holds, empty for none
  std::string shift;        // the rootfs engine used: none|chown|idmap|copy
  std::vector<std::string> shift_keys;  // shifted-tree cache entries the pod references
  bool rootless = false;    // made by an ordinary user (the store's user namespace)
  std::vector<std::string> cgroups;  // the pod's cgroup directories (cgroup.hpp), removed with it
  std::vector<std::string> volume_sources;  // the host paths of its volumes, resolved at start
  pid_t pid = 0;            // the init, in the host's pid namespace; 0 until started
  std::uint64_t start_time = 0;  // of that pid (/proc/PID/stat field 22), against pid reuse
  NetRecord net;            // the network as set up, undone by rm and gc
};

struct PodExitRecord {  // status.json
  int exit = 0;
  std::vector<AppExit> apps;
};

struct PodInfo {
  PodRecord record;
  PodState state = PodState::prepared;
  bool locked = false;  // the lock is held: running, or prepared by a live `pod run`
  std::string damaged;  // why pod.json could not be read (then record has only the uuid);
                        // find_pod returns such a pod by uuid so that `pod rm` can remove it
  std::optional<PodExitRecord> exit;
};

[[nodiscard]] std::string record_to_json(const PodRecord& r);
[[nodiscard]] sys::Result<PodRecord> record_from_json(std::string_view text);
[[nodiscard]] std::string exit_to_json(const PodExitRecord& e);
[[nodiscard]] sys::Result<PodExitRecord> exit_from_json(std::string_view text);

// A random RFC 4122 version 4 uuid.
[[nodiscard]] std::string new_uuid();

// A new pod directory STORE/pods/<uuid> with its lock taken (exclusive) by the returned
// object and pod.json written; the init inherits the lock fd.
class PodDir {
 public:
  [[nodiscard]] static sys::Result<PodDir> create(sys::FdRef store, const PodRecord& record);
  [[nodiscard]] sys::FdRef dir() const { return dir_; }
  [[nodiscard]] sys::FdRef lock_fd() const { return lock_; }
  // Rewrites pod.json atomically (after start: pid, start time, app pids).
  [[nodiscard]] sys::Result<void> write_record(const PodRecord& record);

 private:
  PodDir(sys::Fd dir, sys::Fd lock) : dir_(std::move(dir)), lock_(std::move(lock)) {}
  sys::Fd dir_, lock_;
};

// Every pod of the store, oldest first. A damaged pod.json is reported by uuid and
// skipped by the caller's choice: `damaged` collects those messages.
[[nodiscard]] sys::Result<std::vector<PodInfo>> list_pods(sys::FdRef store, std::vector<std::string>* damaged);
// A pod by name, full uuid, or unique uuid prefix (at least 4 characters).
[[nodiscard]] sys::Result<PodInfo> find_pod(sys::FdRef store, std::string_view which);
// The pod whose uuid is `uuid`, read alone (find_pod reads every pod to match names).
[[nodiscard]] sys::Result<PodInfo> find_pod_by_uuid(sys::FdRef store, const std::string& uuid);

// A pidfd for the pod's init (or an app) when it is still the process that was started
// (start time checked), else ESRCH.
[[nodiscard]] sys::Result<sys::Fd> open_pid(pid_t pid, std::uint64_t start_time);
[[nodiscard]] sys::Result<std::uint64_t> process_start_time(pid_t pid);
// A pidfd for an app of the pod: its start time checked when recorded, else the pod's
// init must be alive (open_pid) and be the app's parent. ESRCH when the app has ended.
[[nodiscard]] sys::Result<sys::Fd> open_app(const PodRecord& pod, const AppRecord& app);

// SIGTERM to the init, then SIGKILL after `timeout_s`; returns once it has ended.
[[nodiscard]] sys::Result<void> stop_pod(const PodInfo& pod, double timeout_s);

// What removing a pod releases outside its directory; given by cmd/, which owns the
// ledger and the shift cache.
struct Releasers {
  std::function<sys::Result<void>(const PodRecord&)> release_lease;
  std::function<sys::Result<void>(const PodRecord&)> release_shifted;
};

// Removes an exited (or abandoned prepared) pod: renames it to garbage, unmounts what
// is mounted below it (ns/ files, rootfs), releases its lease and shifted trees,
// removes the directory. A running pod is refused (EBUSY) naming it.
[[nodiscard]] sys::Result<void> remove_pod(sys::FdRef store, const PodInfo& pod, const Releasers& rel);

// gc: removes every exited pod, garbage left by a killed rm, and prepared pods whose
// `pod run` is gone (lock free, older than a minute). Returns the uuids removed. A pod
// that cannot be removed does not stop the others: with `failed`, its error is added
// there; without, the first such error is returned once the rest are done.
[[nodiscard]] sys::Result<std::vector<std::string>> gc_pods(sys::FdRef store, const Releasers& rel,
                                                            std::vector<sys::Error>* failed = nullptr);

// "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx", lowercase: what may name a pod directory.
[[nodiscard]] bool is_uuid(std::string_view s);

}  // namespace pod::runtime
