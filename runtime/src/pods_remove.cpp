// Removing pods (rm, gc). The directory is renamed to pods/.garbage-<uuid> first, so
// the pod leaves `pod list` at once and a removal cut short is finished by the next gc.
// Then: unmount what is below it, remove its files (so the lease's ids own nothing
// more), release the lease and shifted trees, remove the record last.
#include <sys/file.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "pod/runtime/cgroup.hpp"
#include "pod/sys/fs.hpp"
#include "pod/sys/mountinfo.hpp"
#include "net_helper.hpp"
#include "pods_internal.hpp"

namespace pod::runtime {

using namespace detail;

namespace {

// Detaches every mount at or below `path`, deepest first.
sys::Result<void> unmount_below(const std::string& path) {
  std::vector<std::string> points;
  for (auto& m : POD_TRY(sys::read_mountinfo()))
    if (m.mount_point == path || m.mount_point.starts_with(path + "/")) points.push_back(std::move(m.mount_point));
  std::stable_sort(points.begin(), points.end(), [](auto& a, auto& b) { return a.size() > b.size(); });
  for (auto& p : points)
    // EINVAL/ENOENT: already gone with a parent detached before it.
    if (::umount2(p.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0 && errno != EINVAL && errno != ENOENT)
      return sys::sys_error("unmounting '{}'", p);
  return {};
}

std::string label(const PodRecord& r) {
  return r.name.empty() ? fmt::format("pod {}", r.uuid) : fmt::format("pod {} ({})", r.name, r.uuid);
}

// The record in `dir`, or nullopt when missing or damaged (nothing then to release).
std::optional<PodRecord> read_record(sys::FdRef dir) {
  auto text = sys::read_file(dir, kRecord, kRecordLimit);
  if (!text) return std::nullopt;
  auto r = record_from_json(*text);
  if (!r) return std::nullopt;
  return std::move(*r);
}

// CNI DEL, the helper stopped, the namespace unbound; the bound namespace is found below
// `dir_path`, where the pod directory is now.
sys::Result<void> release_network(PodRecord& rec, const std::string& dir_path) {
  if (rec.net.netns_bound) rec.net.netns = dir_path + "/ns/net";
  return teardown_network(rec.net, HelperWait::always, PodEnded::yes);
}

// A helper's claim whose `pod run` is gone (its lock is free): the helper it names is
// stopped, unless the pod's record names it (then the pod's own teardown stops it),
// and the claim removed. A pid that is no longer a helper's (recycled) is left alone.
sys::Result<void> reap_helper_claim(sys::FdRef pods, const std::string& name) {
  auto f = sys::open_at(pods, name, O_RDONLY | O_NOFOLLOW);
  if (!f) return f.error().code == ENOENT ? sys::Result<void>{} : sys::Unexpected(std::move(f.error()));
  if (::flock(f->get(), LOCK_EX | LOCK_NB) != 0)
    return errno == EWOULDBLOCK ? sys::Result<void>{} : sys::sys_error("locking '{}'", name);
  auto text = POD_TRY(sys::read_fd(*f, 64));
  pid_t pid = static_cast<pid_t>(std::atoi(text.c_str()));
  std::string uuid = name.substr(std::string_view(kHelperClaimPrefix).size());
  bool recorded = false;
  if (auto dir = sys::open_at(pods, uuid, O_RDONLY | O_DIRECTORY | O_NOFOLLOW); dir && pid > 0)
    if (auto rec = read_record(*dir)) recorded = rec->net.helper_pid == pid;
  auto comm = pid > 0 ? sys::read_file(sys::FdRef::cwd(), fmt::format("/proc/{}/comm", pid), 64)
                      : sys::Result<std::string>(std::string());
  bool helper = comm && (comm->starts_with("pasta") || comm->starts_with("passt") || comm->starts_with("slirp4netns"));
  if (!recorded && helper) POD_TRY(stop_process(pid, 0, comm->substr(0, comm->find('\n')), true));
  if (::unlinkat(pods.get(), name.c_str(), 0) != 0 && errno != ENOENT) return sys::sys_error("removing '{}'", name);
  return {};
}

// Finishes the removal of pods/<gname>, a garbage directory.
sys::Result<void> destroy(sys::FdRef pods, const std::string& gname, const Releasers& rel) {
  std::string pods_path = POD_TRY(sys::fd_path(pods));
  auto dir = sys::open_at(pods, gname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  if (!dir) {
    if (dir.error().code == ENOENT) return {};
    return sys::Unexpected(std::move(dir.error()));
  }
  std::optional<PodRecord> rec = read_record(*dir);
  // The network first, while its bound namespace (renamed with the pod) still holds it.
  if (rec) POD_TRY(release_network(*rec, pods_path + "/" + gname));
  POD_TRY(unmount_below(pods_path + "/" + gname));
  for (auto& n : POD_TRY(sys::list_dir(*dir)))
    if (n != kRecord) POD_TRY(sys::remove_tree(*dir, n));
  if (rec) {
    POD_TRY_CTX(remove_cgroups(rec->cgroups, rec->uuid), "removing its cgroups");
    if (rel.release_lease) POD_TRY_CTX(rel.release_lease(*rec), "releasing the lease '{}'", rec->lease);
    if (rel.release_shifted) POD_TRY_CTX(rel.release_shifted(*rec), "releasing its shifted trees");
  }
  // The record goes once released: a gc after a failure above releases again.
  if (::unlinkat(dir->get(), kRecord, 0) != 0 && errno != ENOENT) return sys::sys_error("unlink '{}'", kRecord);
  POD_TRY(sys::remove_tree(pods, gname));
  return {};
}

// Takes the pod's lock, renames it to garbage and destroys it. EBUSY while the lock is held.
sys::Result<void> remove_one(sys::FdRef pods, const PodInfo& pod, const Releasers& rel) {
  const std::string& uuid = pod.record.uuid;
  if (!is_uuid(uuid)) return sys::make_error(EINVAL, "'{}' is not a pod uuid", uuid);
  auto dir = sys::open_at(pods, uuid, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  if (!dir) {
    if (dir.error().code == ENOENT) return sys::make_error(ENOENT, "no pod '{}'", uuid);
    return sys::Unexpected(std::move(dir.error()));
  }
  auto lock = take_lock(*dir);
  if (!lock && lock.error().code == EWOULDBLOCK) {
    std::optional<PodRecord> now = read_record(*dir);
    const PodRecord& r = now ? *now : pod.record;
    if (r.pid == 0) return sys::make_error(EBUSY, "{} is being started by `pod run`", label(r));
    return sys::make_error(EBUSY, "{} is running: stop it first", label(r));
  }
  if (!lock && lock.error().code != ENOENT) return sys::Unexpected(std::move(lock.error()));
  std::string gname = kGarbagePrefix + uuid;
  if (::renameat2(pods.get(), uuid.c_str(), pods.get(), gname.c_str(), RENAME_NOREPLACE) != 0)
    return sys::sys_error("rename to '{}'", gname);
  return destroy(pods, gname, rel);
}

}  // namespace

sys::Result<void> remove_pod(sys::FdRef store, const PodInfo& pod, const Releasers& rel) {
  auto pods = sys::open_at(store, kPodsDir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  if (!pods) {
    if (pods.error().code == ENOENT) return sys::make_error(ENOENT, "no pod '{}'", pod.record.uuid);
    return sys::Unexpected(std::move(pods.error()));
  }
  auto r = remove_one(*pods, pod, rel);
  if (!r && r.error().code != EBUSY && r.error().code != ENOENT)
    return sys::Unexpected(std::move(r.error()).context("removing {}", label(pod.record)));
  return r;
}

sys::Result<std::vector<std::string>> gc_pods(sys::FdRef store, const Releasers& rel, std::vector<sys::Error>* failed) {
  std::vector<std::string> removed;
  std::optional<sys::Error> first;
  auto failure = [&](sys::Error e) {
    if (failed) failed->push_back(std::move(e));
    else if (!first) first = std::move(e);
  };
  auto pods = sys::open_at(store, kPodsDir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  if (!pods) {
    if (pods.error().code == ENOENT) return removed;
    return sys::Unexpected(std::move(pods.error()).context("opening the pods directory"));
  }
  auto names = POD_TRY_CTX(sys::list_dir(*pods), "listing the pods directory");
  for (auto& n : names) {
    if (n.starts_with(kGarbagePrefix) && is_uuid(n.substr(std::string_view(kGarbagePrefix).size()))) {
      if (auto r = destroy(*pods, n, rel); !r) failure(std::move(r.error()).context("removing '{}'", n));
      else removed.push_back(n.substr(std::string_view(kGarbagePrefix).size()));
    } else if (n.starts_with(kHelperClaimPrefix) && is_uuid(n.substr(std::string_view(kHelperClaimPrefix).size()))) {
      if (auto r = reap_helper_claim(*pods, n); !r) failure(std::move(r.error()).context("the helper claimed by '{}'", n));
    } else if (n.starts_with(kStagingPrefix)) {
      // A `pod run` killed while making the directory; left alone while it may be at work.
      auto dir = sys::open_at(*pods, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      auto age = age_of(*pods, n.c_str());
      if (!dir || !age || *age < kAbandonedAfter) continue;
      if (auto held = lock_held(*dir); !held || *held) continue;
      if (auto r = sys::remove_tree(*pods, n); !r) failure(std::move(r.error()).context("removing '{}'", n));
    } else if (is_uuid(n)) {
      Scanned s = read_pod(*pods, n);
      if (!s.damaged.empty() || s.info.locked) continue;  // damaged pods: only by `pod rm UUID`
      if (s.info.state == PodState::prepared) {
        auto dir = sys::open_at(*pods, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
        auto age = dir ? age_of(*dir, kRecord) : sys::Result<long>(0);
        if (!age || *age < kAbandonedAfter) continue;
      }
      auto r = remove_one(*pods, s.info, rel);
      if (r) removed.push_back(n);
      else if (r.error().code != EBUSY && r.error().code != ENOENT)  // started or removed meanwhile
        failure(std::move(r.error()).context("removing {}", label(s.info.record)));
    }
  }
  if (first) return sys::Unexpected(std::move(*first));
  return removed;
}

}  // namespace pod::runtime
