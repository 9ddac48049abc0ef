#include "pod/idmap/ledger.hpp"

#include <sys/stat.h>
#include <time.h>

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "pod/idmap/census.hpp"
#include "pod/sys/fs.hpp"
#include "pod/sys/lock.hpp"

namespace pod::idmap {

using json = nlohmann::json;
using sys::Fd;
using sys::FdRef;
using sys::FileLock;
using sys::make_error;

namespace {

constexpr const char* kLeases = "leases.json";
constexpr const char* kLock = "leases.lock";
constexpr std::size_t kLedgerLimit = 64 << 20;

std::string now_rfc3339() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm {};
  ::gmtime_r(&ts.tv_sec, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

json map_to_json(const IdMap& m) {
  json a = json::array();
  for (auto& e : m.extents) a.push_back({e.inner, e.outer, e.count});
  return a;
}

Result<IdMap> map_from_json(const json& j, IdKind kind) {
  IdMap m;
  if (!j.is_array()) return make_error(EINVAL, "{} map is not a list", kind_name(kind));
  for (auto& e : j) {
    if (!e.is_array() || e.size() != 3 || !e[0].is_number_unsigned() || !e[1].is_number_unsigned() ||
        !e[2].is_number_unsigned() || e[0].get<std::uint64_t>() > kIdLimit || e[1].get<std::uint64_t>() > kIdLimit ||
        e[2].get<std::uint64_t>() > kIdLimit)
      return make_error(EINVAL, "{} map extent is not [inner, outer, count]", kind_name(kind));
    m.extents.push_back({e[0].get<std::uint32_t>(), e[1].get<std::uint32_t>(), e[2].get<std::uint32_t>()});
  }
  POD_TRY(check_map_shape(m, kind));
  return m;
}

Result<std::vector<Lease>> load(FdRef dir) {
  auto text = sys::read_file(dir, kLeases, kLedgerLimit);
  if (!text) {
    if (text.error().code == ENOENT) return std::vector<Lease>{};
    return sys::Unexpected(std::move(text.error()).context("reading the ledger"));
  }
  return leases_from_text(*text);
}

Result<void> store(FdRef dir, const std::vector<Lease>& leases) {
  return sys::write_file_atomic(dir, kLeases, leases_to_text(leases), 0644);
}

// Why `host` (ids of one kind) cannot be leased, given the other leases; empty if it can.
std::optional<std::string> lease_conflict(const std::vector<Lease>& others, IdKind kind, const RangeSet& host) {
  std::optional<std::uint64_t> best;
  const Lease* hit = nullptr;
  for (auto& l : others) {
    RangeSet theirs = host_ids(kind == IdKind::uid ? l.uids : l.gids);
    if (auto c = theirs.first_common(host); c && (!best || *c < *best)) {
      best = c;
      hit = &l;
    }
  }
  if (!hit) return std::nullopt;
  if (hit->state == LeaseState::quarantined)
    return fmt::format("{} {} on the host is quarantined: files owned by the released lease '{}' remain",
                       kind_name(kind), *best, hit->name);
  return fmt::format("{} {} on the host is leased to '{}'", kind_name(kind), *best, hit->name);
}

RangeSet taken_ids(const std::vector<Lease>& others, const Allotment& a, IdKind kind) {
  // Added in order, each insertion lands at the end: a passwd database of 100000
  // users stays cheap.
  std::vector<IdRange> all;
  for (auto& l : others)
    for (auto& e : (kind == IdKind::uid ? l.uids : l.gids).extents) all.push_back({e.outer, e.count});
  for (auto& r : a.reserved)
    if (r.kind == kind) all.push_back(r.range);
  std::sort(all.begin(), all.end(), [](IdRange x, IdRange y) { return x.start < y.start; });
  RangeSet t;
  for (auto r : all) t.add(r);
  return t;
}

Result<void> check_explicit(const std::vector<Lease>& others, const Allotment& a, IdKind kind, const IdMap& m) {
  const RangeSet& pool = kind == IdKind::uid ? a.uids : a.gids;
  RangeSet host = host_ids(m);
  for (auto& iv : host.intervals())
    if (auto miss = pool.first_missing(iv.start, iv.end))
      return make_error(EPERM, "{} {} on the host is not in your allotment ({})", kind_name(kind), *miss, pool.str());
  for (auto& e : m.extents)
    if (auto why = reserved_conflict(a, kind, {e.outer, e.count})) return make_error(EBUSY, "{}", *why);
  if (auto why = lease_conflict(others, kind, host)) return make_error(EBUSY, "{}", *why);
  return {};
}

Result<IdMap> fit(const std::vector<Lease>& others, const Allotment& a, IdKind kind, const Policy& p,
                  std::string_view name) {
  const RangeSet& pool = kind == IdKind::uid ? a.uids : a.gids;
  const RangeSet& cover = kind == IdKind::uid ? p.cover_uids : p.cover_gids;
  if (cover.intervals().size() > kMaxExtents)
    return make_error(EINVAL, "the {}s to map form {} ranges; a user namespace holds at most {}", kind_name(kind),
                      cover.intervals().size(), kMaxExtents);
  std::uint64_t need = cover.empty() ? p.size : cover.size();
  if (need > (1ULL << 31))
    return make_error(EINVAL, "the {}s to map number {}, more than a lease may hold (2147483648)", kind_name(kind), need);
  RangeSet taken = taken_ids(others, a, kind);
  std::uint64_t block = std::max<std::uint64_t>(a.block, 1);
  std::optional<std::uint32_t> start;
  if (p.kind == Policy::Kind::pick) {
    std::uint64_t step = (need + block - 1) / block * block;
    start = pick_fit(pool, taken, need, step, name);
  } else {
    start = first_fit(pool, taken, need, block);
  }
  if (!start)
    return make_error(ENOSPC, "no free range of {} {}s in {} ({}; {} of them free)", need, kind_name(kind), a.source,
                      pool.str(), [&] { RangeSet f = pool; f.subtract(taken); return f.size(); }());
  if (cover.empty()) return IdMap{{{0, *start, static_cast<std::uint32_t>(need)}}};
  IdMap m;
  std::uint64_t outer = *start;
  for (const auto& iv : cover.intervals()) {
    m.extents.push_back({static_cast<std::uint32_t>(iv.start), static_cast<std::uint32_t>(outer),
                         static_cast<std::uint32_t>(iv.end - iv.start)});
    outer += iv.end - iv.start;
  }
  return m;
}

Result<std::uint64_t> parse_size_value(std::string_view s) {
  std::uint64_t v = 0;
  if (s.empty() || s.size() > 10) return make_error(EINVAL, "size '{}' is not a decimal number", s);
  for (char c : s) {
    if (c < '0' || c > '9') return make_error(EINVAL, "size '{}' is not a decimal number", s);
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

}  // namespace

const char* state_name(LeaseState s) { return s == LeaseState::leased ? "leased" : "quarantined"; }

Result<Policy> Policy::parse(std::string_view text, std::optional<std::uint64_t> size) {
  Policy p;
  if (size) p.size = *size;
  if (text == "auto" || text.empty()) {
    p.kind = Kind::automatic;
  } else if (text.starts_with("auto:size=")) {
    p.kind = Kind::automatic;
    p.size = POD_TRY(parse_size_value(text.substr(10)));
  } else if (text == "pick") {
    p.kind = Kind::pick;
  } else if (text.find(':') != std::string_view::npos) {
    if (size) return make_error(EINVAL, "a size does not go with an explicit map: its extents give the sizes");
    p.kind = Kind::map;
    p.map = POD_TRY(parse_map_spec(text));
    return p;
  } else {
    return make_error(EINVAL, "policy '{}' is not auto, auto:size=N, pick or a map CONTAINER:HOST:COUNT[,...]", text);
  }
  // A namespace needs its root; anything past 2^31 leaves devpts gid= and friends behind.
  if (p.size == 0 || p.size > (1ULL << 31))
    return make_error(EINVAL, "size {} is not between 1 and 2147483648", p.size);
  return p;
}

Result<void> check_lease_name(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 63;
  for (std::size_t i = 0; ok && i < name.size(); ++i) {
    char c = name[i];
    ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && i > 0);
  }
  if (!ok) return make_error(EINVAL, "name '{}' is not [a-z0-9][a-z0-9-]{{0,62}}", name);
  return {};
}

Result<Lease> choose_lease(const std::vector<Lease>& others, const Allotment& a, const AllocRequest& req) {
  POD_TRY(check_lease_name(req.name));
  for (auto& l : others)
    if (l.name == req.name)
      return make_error(EEXIST, "a lease named '{}' exists ({})", req.name, state_name(l.state));
  Lease lease;
  lease.name = req.name;
  lease.pod = req.pod;
  if (req.policy.kind == Policy::Kind::map) {
    POD_TRY(check_map_shape(req.policy.map.uids, IdKind::uid));
    POD_TRY(check_map_shape(req.policy.map.gids, IdKind::gid));
    POD_TRY(check_explicit(others, a, IdKind::uid, req.policy.map.uids));
    POD_TRY(check_explicit(others, a, IdKind::gid, req.policy.map.gids));
    lease.uids = req.policy.map.uids;
    lease.gids = req.policy.map.gids;
  } else {
    lease.uids = POD_TRY(fit(others, a, IdKind::uid, req.policy, req.name));
    lease.gids = POD_TRY(fit(others, a, IdKind::gid, req.policy, req.name));
  }
  return lease;
}

// One lease per line: readable, and a diff of two versions shows which lease changed.
std::string leases_to_text(const std::vector<Lease>& leases) {
  std::string out = "{\"version\": 1, \"leases\": [";
  for (std::size_t i = 0; i < leases.size(); ++i) {
    auto& l = leases[i];
    json j{{"name", l.name},
           {"pod", l.pod ? json(*l.pod) : json(nullptr)},
           {"uid_map", map_to_json(l.uids)},
           {"gid_map", map_to_json(l.gids)},
           {"created", l.created},
           {"state", state_name(l.state)}};
    out += (i ? ",\n  " : "\n  ") + j.dump();
  }
  out += leases.empty() ? "]}\n" : "\n]}\n";
  return out;
}

Result<std::vector<Lease>> leases_from_text(std::string_view text) {
  auto damaged = [](std::string why) {
    return make_error(EINVAL, "the ledger '{}' is damaged: {}; fix or remove it by hand", kLeases, why);
  };
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return damaged("not a JSON object");
  if (!j.contains("version") || j["version"] != 1) return damaged("not version 1");
  if (!j.contains("leases") || !j["leases"].is_array()) return damaged("no list of leases");
  std::vector<Lease> out;
  for (auto& e : j["leases"]) {
    if (!e.is_object() || !e.contains("name") || !e["name"].is_string() || !e.contains("uid_map") ||
        !e.contains("gid_map") || !e.contains("state") || !e["state"].is_string())
      return damaged("a lease lacks name, uid_map, gid_map or state");
    Lease l;
    l.name = e["name"].get<std::string>();
    if (e.contains("pod") && e["pod"].is_string()) l.pod = e["pod"].get<std::string>();
    auto u = map_from_json(e["uid_map"], IdKind::uid);
    if (!u) return damaged(fmt::format("lease '{}': {}", l.name, u.error().message));
    auto g = map_from_json(e["gid_map"], IdKind::gid);
    if (!g) return damaged(fmt::format("lease '{}': {}", l.name, g.error().message));
    l.uids = std::move(*u);
    l.gids = std::move(*g);
    if (e.contains("created") && e["created"].is_string()) l.created = e["created"].get<std::string>();
    std::string st = e["state"].get<std::string>();
    if (st == "leased") l.state = LeaseState::leased;
    else if (st == "quarantined") l.state = LeaseState::quarantined;
    else return damaged(fmt::format("lease '{}' has state '{}'", l.name, st));
    out.push_back(std::move(l));
  }
  return out;
}

InUse store_files_in_use(FdRef store, CachedForLease cached) {
  return [store, cached = std::move(cached)](const Lease& l) -> Result<std::optional<std::string>> {
    RangeSet uids = host_ids(l.uids), gids = host_ids(l.gids);
    // `sub` below `dir`, reported as `shown`.
    auto look = [&](FdRef dir, const std::string& sub, const std::string& shown) -> Result<std::optional<std::string>> {
      auto r = find_owned_by(dir, sub, uids, gids);
      if (!r) {
        // What cannot be read cannot be shown unused.
        if (r.error().code == EACCES || r.error().code == EPERM)
          return fmt::format("{} (cannot be searched: {})", shown, r.error().what());
        return sys::Unexpected(std::move(r.error()));
      }
      if (*r) return *r == "." ? shown : fmt::format("{}/{}", shown, **r);
      return std::nullopt;
    };
    if (sys::exists_at(store, "pods"))
      if (auto r = POD_TRY(look(store, "pods", "pods"))) return r;
    if (!sys::exists_at(store, "shifted")) return std::nullopt;
    if (!cached) return look(store, "shifted", "shifted");
    Fd shifted = POD_TRY(sys::open_dir(store, "shifted"));
    struct stat top {};
    if (::fstat(shifted.get(), &top) != 0) return sys::sys_error("stat 'shifted'");
    if (uids.contains(top.st_uid) || gids.contains(top.st_gid)) return std::string("shifted");
    for (const auto& name : POD_TRY(sys::list_dir(shifted))) {
      struct stat st {};
      if (::fstatat(shifted.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;  // gone while we looked
        return sys::sys_error("stat 'shifted/{}'", name);
      }
      if (!S_ISDIR(st.st_mode)) {
        if (uids.contains(st.st_uid) || gids.contains(st.st_gid)) return "shifted/" + name;
        continue;
      }
      if (cached(shifted, name, l)) continue;
      if (auto r = POD_TRY(look(shifted, name, "shifted/" + name))) return r;
    }
    return std::nullopt;
  };
}

Result<Fd> open_ledger_dir(std::string_view store_path) {
  if (store_path.empty() || store_path.front() != '/')
    return make_error(EINVAL, "store path '{}' is not absolute", store_path);
  Fd dir = POD_TRY_CTX(sys::make_dirs(store_path, 0700), "making the store '{}'", store_path);
  POD_TRY_CTX(sys::ensure_dir(dir, "idmap", 0755), "making the ledger directory in '{}'", store_path);
  return sys::open_dir(dir, "idmap");
}

Result<std::vector<Lease>> read_leases(FdRef dir) {
  auto lock = POD_TRY(FileLock::acquire(dir, kLock, FileLock::Mode::shared));
  return load(dir);
}

Result<std::vector<Lease>> refresh_leases(FdRef dir, const InUse& in_use) {
  auto lock = POD_TRY(FileLock::acquire(dir, kLock, FileLock::Mode::exclusive));
  std::vector<Lease> leases = POD_TRY(load(dir));
  std::vector<Lease> kept;
  for (auto& l : leases) {
    if (l.state == LeaseState::quarantined && !POD_TRY_CTX(in_use(l), "re-checking lease '{}'", l.name)) continue;
    kept.push_back(std::move(l));
  }
  if (kept.size() != leases.size()) POD_TRY(store(dir, kept));
  return kept;
}

Result<Lease> allocate(FdRef dir, const Allotment& a, const AllocRequest& req) {
  auto lock = POD_TRY(FileLock::acquire(dir, kLock, FileLock::Mode::exclusive));
  std::vector<Lease> leases = POD_TRY(load(dir));
  Lease lease = POD_TRY(choose_lease(leases, a, req));
  lease.created = now_rfc3339();
  leases.push_back(lease);
  POD_TRY(store(dir, leases));
  return lease;
}

Result<Released> release(FdRef dir, std::string_view name, const InUse& in_use) {
  auto lock = POD_TRY(FileLock::acquire(dir, kLock, FileLock::Mode::exclusive));
  std::vector<Lease> leases = POD_TRY(load(dir));
  auto it = std::find_if(leases.begin(), leases.end(), [&](const Lease& l) { return l.name == name; });
  if (it == leases.end()) return make_error(ENOENT, "no lease named '{}'", name);
  Released out;
  auto used = POD_TRY_CTX(in_use(*it), "checking the store for files of lease '{}'", name);
  if (used) {
    out.quarantined = true;
    out.path = *used;
    it->state = LeaseState::quarantined;
    it->pod.reset();
  } else {
    leases.erase(it);
  }
  POD_TRY(store(dir, leases));
  return out;
}

}  // namespace pod::idmap
