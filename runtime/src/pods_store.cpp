// STORE/pods: making a pod directory, reading every pod's record and state, finding
// one by name or uuid.
#include <dirent.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <memory>
#include <tuple>

#include "pod/sys/fs.hpp"
#include "pods_internal.hpp"

namespace pod::runtime {

using namespace detail;

const char* state_name(PodState s) {
  switch (s) {
    case PodState::prepared: return "prepared";
    case PodState::running: return "running";
    case PodState::exited: return "exited";
    case PodState::garbage: return "garbage";
  }
  return "unknown";
}

std::string new_uuid() {
  std::array<unsigned char, 16> b{};
  std::size_t got = 0;
  while (got < b.size()) {
    ssize_t n = ::getrandom(b.data() + got, b.size() - got, 0);
    if (n > 0) got += static_cast<std::size_t>(n);
    // getrandom on a 16-byte buffer only fails when interrupted (EINTR): retry.
  }
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // variant RFC 4122
  std::string out;
  static constexpr char kHex[] = "0123456789abcdef";
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kHex[b[i] >> 4];
    out += kHex[b[i] & 0xf];
  }
  return out;
}

bool is_uuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash != (s[i] == '-')) return false;
    if (!dash && !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
  }
  return true;
}

namespace detail {

namespace {

sys::Result<sys::Fd> try_lock(sys::FdRef pod, int how) {
  int fd = ::openat(pod.get(), kLock, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return sys::sys_error("open '{}'", kLock);
  sys::Fd lock(fd);
  if (::flock(lock.get(), how | LOCK_NB) != 0) return sys::sys_error("lock '{}'", kLock);
  return lock;
}

}  // namespace

// Shared: probes (list, status) do not block each other. A pod's holder is exclusive.
sys::Result<bool> lock_held(sys::FdRef pod) {
  auto fd = try_lock(pod, LOCK_SH);
  if (fd) return false;  // closing the new description releases it at once
  if (fd.error().code == EWOULDBLOCK) return true;
  if (fd.error().code == ENOENT) return false;
  return sys::Unexpected(std::move(fd.error()));
}

sys::Result<sys::Fd> take_lock(sys::FdRef pod) {
  // A few tries: a concurrent probe holds it (shared) for a moment only.
  for (int i = 0;; ++i) {
    auto fd = try_lock(pod, LOCK_EX);
    if (fd || fd.error().code != EWOULDBLOCK || i == 10) return fd;
    ::usleep(10000);
  }
}

sys::Result<long> age_of(sys::FdRef pod, const char* name) {
  struct stat st = POD_TRY(sys::stat_at(pod, name, AT_SYMLINK_NOFOLLOW));
  struct timespec now {};
  ::clock_gettime(CLOCK_REALTIME, &now);
  return static_cast<long>(now.tv_sec - st.st_mtim.tv_sec);
}

Scanned read_pod(sys::FdRef pods, const std::string& name) {
  Scanned s;
  s.dir = name;
  s.info.record.uuid = name;
  auto dir = sys::open_at(pods, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  if (!dir) {
    s.damaged = dir.error().what();
    return s;
  }
  auto locked = lock_held(*dir);
  s.info.locked = locked && *locked;
  auto text = sys::read_file(*dir, kRecord, kRecordLimit);
  auto rec = text ? record_from_json(*text) : sys::Result<PodRecord>(sys::Unexpected(std::move(text.error())));
  if (rec && rec->uuid != name) rec = sys::make_error(EINVAL, "pod record: its uuid is {}", rec->uuid);
  if (!locked || !rec) {
    s.damaged = !rec ? rec.error().what() : locked.error().what();
    s.info.state = s.info.locked ? PodState::running : PodState::prepared;
    return s;
  }
  s.info.record = std::move(*rec);
  bool started = s.info.record.pid != 0;
  if (s.info.locked) s.info.state = started ? PodState::running : PodState::prepared;
  else s.info.state = started ? PodState::exited : PodState::prepared;
  if (s.info.state == PodState::exited) {
    // A damaged or missing status.json leaves the exit unknown (killed, or init crashed).
    if (auto st = sys::read_file(*dir, kStatus, kRecordLimit); st)
      if (auto e = exit_from_json(*st); e) s.info.exit = std::move(*e);
  }
  return s;
}

sys::Result<std::vector<Scanned>> scan_pods(sys::FdRef store) {
  std::vector<Scanned> out;
  auto pods = sys::open_at(store, kPodsDir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  if (!pods) {
    if (pods.error().code == ENOENT) return out;
    return sys::Unexpected(std::move(pods.error()).context("opening the pods directory"));
  }
  auto names = POD_TRY_CTX(sys::list_dir(*pods), "listing the pods directory");
  for (auto& n : names)
    if (is_uuid(n)) out.push_back(read_pod(*pods, n));
  return out;
}

}  // namespace detail

sys::Result<std::vector<PodInfo>> list_pods(sys::FdRef store, std::vector<std::string>* damaged) {
  auto all = POD_TRY(scan_pods(store));
  std::vector<PodInfo> out;
  for (auto& s : all) {
    if (!s.damaged.empty()) {
      if (damaged) damaged->push_back(fmt::format("pod {}: {}", s.dir, s.damaged));
      continue;
    }
    out.push_back(std::move(s.info));
  }
  std::stable_sort(out.begin(), out.end(), [](const PodInfo& a, const PodInfo& b) {
    return std::tie(a.record.created, a.record.uuid) < std::tie(b.record.created, b.record.uuid);
  });
  return out;
}

sys::Result<PodInfo> find_pod(sys::FdRef store, std::string_view which) {
  auto all = POD_TRY(scan_pods(store));
  auto pick = [&](std::vector<Scanned*>& hits) -> sys::Result<PodInfo> {
    if (hits.size() == 1) {
      PodInfo info = std::move(hits[0]->info);
      info.damaged = std::move(hits[0]->damaged);
      return info;
    }
    std::string names;
    for (auto* h : hits)
      names += fmt::format("{}{}{}", names.empty() ? "" : ", ", h->dir,
                           h->damaged.empty() ? fmt::format(" ({})", h->info.record.name) : " (damaged)");
    return sys::make_error(EINVAL, "'{}' matches {} pods: {}", which, hits.size(), names);
  };
  std::vector<Scanned*> hits;
  for (auto& s : all)
    if (s.damaged.empty() && s.info.record.name == which) hits.push_back(&s);
  if (!hits.empty()) return pick(hits);
  for (auto& s : all)
    if (s.dir == which) hits.push_back(&s);
  if (!hits.empty()) return pick(hits);
  if (which.size() >= 4)
    for (auto& s : all)
      if (s.dir.starts_with(which)) hits.push_back(&s);
  if (!hits.empty()) return pick(hits);
  return sys::make_error(ENOENT, "no pod '{}'", which);
}

sys::Result<PodInfo> find_pod_by_uuid(sys::FdRef store, const std::string& uuid) {
  if (!is_uuid(uuid)) return sys::make_error(EINVAL, "pod uuid '{}' is not a uuid", uuid);
  sys::Fd pods = POD_TRY_CTX(sys::open_at(store, kPodsDir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW), "no pod '{}'", uuid);
  if (!sys::exists_at(pods, uuid)) return sys::make_error(ENOENT, "no pod '{}'", uuid);
  Scanned s = read_pod(pods, uuid);
  s.info.damaged = std::move(s.damaged);
  return std::move(s.info);
}

sys::Result<PodDir> PodDir::create(sys::FdRef store, const PodRecord& record) {
  if (!is_uuid(record.uuid)) return sys::make_error(EINVAL, "pod uuid '{}' is not a uuid", record.uuid);
  auto fail = [&](sys::Error e) { return sys::Unexpected(std::move(e).context("making pod {}", record.uuid)); };
  if (auto r = sys::ensure_dir(store, kPodsDir, 0700); !r) return fail(std::move(r.error()));
  auto pods = sys::open_at(store, kPodsDir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  if (!pods) return fail(std::move(pods.error()));
  // Built under a staging name and renamed last: a pod appears with its record and its
  // lock taken, never half made.
  std::string staging = kStagingPrefix + record.uuid;
  auto build = [&]() -> sys::Result<PodDir> {
    if (::mkdirat(pods->get(), staging.c_str(), 0700) != 0) return sys::sys_error("mkdir '{}'", staging);
    sys::Fd dir = POD_TRY(sys::open_at(*pods, staging, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
    int lfd = ::openat(dir.get(), kLock, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lfd < 0) return sys::sys_error("create '{}'", kLock);
    sys::Fd lock(lfd);
    if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) return sys::sys_error("lock '{}'", kLock);
    // upper/ is the overlay's root directory, whose mode the pod sees on "/".
    for (auto [sub, mode] : {std::pair{"upper", 0755}, {"work", 0700}, {"rootfs", 0755}, {"ns", 0700}})
      if (::mkdirat(dir.get(), sub, static_cast<mode_t>(mode)) != 0) return sys::sys_error("mkdir '{}'", sub);
    // Not synced: a pod does not outlive a crash, and gc removes what one leaves.
    POD_TRY(sys::write_file_atomic(dir, kRecord, record_to_json(record), 0644, sys::Sync::no));
    if (::renameat2(pods->get(), staging.c_str(), pods->get(), record.uuid.c_str(), RENAME_NOREPLACE) != 0)
      return sys::sys_error("rename '{}' to '{}'", staging, record.uuid);
    return PodDir(std::move(dir), std::move(lock));
  };
  auto r = build();
  if (!r) {
    (void)sys::remove_tree(*pods, staging);
    return fail(std::move(r.error()));
  }
  return r;
}

sys::Result<void> PodDir::write_record(const PodRecord& record) {
  POD_TRY_CTX(sys::write_file_atomic(dir_, kRecord, record_to_json(record), 0644, sys::Sync::no), "writing the record of pod {}",
              record.uuid);
  return {};
}

}  // namespace pod::runtime
