#include "run_maps.hpp"

#include <unistd.h>

#include <fmt/format.h>

#include "context.hpp"
#include "pod/idmap/allotment.hpp"
#include "pod/idmap/userns.hpp"
#include "pod/shift/cache.hpp"
#include "pod/shift/idshift.hpp"
#include "pod/sys/fs.hpp"

namespace pod::cmd {

namespace {

idmap::IdMap identity(std::uint32_t count) { return idmap::IdMap{{{0, 0, count}}}; }


// [0, size) and the used ids above it, in at most kMaxExtents ranges; empty when every
// used id is below size (then the lease is the usual single extent).
idmap::RangeSet cover_for(const idmap::RangeSet& used, std::uint64_t size) {
  idmap::RangeSet above = used;
  above.subtract(0, size);
  if (above.empty()) return {};
  idmap::RangeSet cover;
  cover.add(0, size);
  cover.add(above);
  return idmap::coarsened(cover, idmap::kMaxExtents);
}

}  // namespace

bool caller_is_root() { return ::geteuid() == 0 && ::getuid() == 0; }

idmap::IdMap inner_identity(const idmap::IdMap& m) {
  idmap::IdMap out;
  for (const auto& e : m.extents) out.extents.push_back({e.inner, e.inner, e.count});
  return out;
}

sys::Result<PodMaps> decide_maps(std::string_view policy, const std::string& store_path, const std::string& pod_name,
                                 const std::string& pod_uuid, bool dry_run, const ImageIds* image_ids) {
  PodMaps out;
  out.rootless = !caller_is_root();
  std::string p(policy.empty() ? (out.rootless ? "keep" : "auto") : policy);
  out.policy = p.starts_with("auto") ? "auto" : p;

  if (p == "host") {
    if (out.rootless)
      return sys::make_error(EPERM, "--userns host needs root: an ordinary user's pod always has its own user "
                                    "namespace (try --userns keep)");
    out.host = {identity(0xffffffffu), identity(0xffffffffu)};
    out.view = out.host;
    out.new_userns = false;
    return out;
  }
  if (p == "keep") {
    if (!out.rootless) {
      // The store's own mapping for root is the host's: a user namespace that maps every id.
      out.host = {identity(0xffffffffu), identity(0xffffffffu)};
      out.view = out.host;
      return out;
    }
    idmap::StoreMapping m = POD_TRY(idmap::store_mapping_for_caller(warn));
    out.host = {m.uids, m.gids};
    out.view = {inner_identity(m.uids), inner_identity(m.gids)};
    out.new_userns = false;  // the store's user namespace, which `pod` enters, is the pod's
    return out;
  }
  if (p.starts_with("auto") || p == "pick") out.policy = p.starts_with("auto") ? "auto" : "pick";
  else out.policy = "map";

  idmap::AllocRequest req;
  req.name = pod_name;
  req.pod = pod_uuid;
  req.policy = POD_TRY_CTX(idmap::Policy::parse(p, std::nullopt), "--userns");
  if (p == "auto" && image_ids) {
    req.policy.cover_uids = cover_for(image_ids->uids, req.policy.size);
    req.policy.cover_gids = cover_for(image_ids->gids, req.policy.size);
  }
  sys::Fd ledger = POD_TRY(idmap::open_ledger_dir(store_path));
  idmap::Allotment allot = POD_TRY(idmap::caller_allotment(ledger, warn));
  idmap::Lease lease;
  if (dry_run) {
    auto others = POD_TRY(idmap::read_leases(ledger));
    lease = POD_TRY(idmap::choose_lease(others, allot, req));
  } else {
    lease = POD_TRY(idmap::allocate(ledger, allot, req));
  }
  out.host = {lease.uids, lease.gids};
  out.lease = lease;
  if (!out.rootless) {
    out.view = out.host;
    return out;
  }
  // An ordinary user's lease lies in their subordinate ranges; `pod` writes the pod's
  // maps from inside the store's namespace, where those host ids have other numbers.
  idmap::StoreMapping m = POD_TRY(idmap::store_mapping_for_caller(warn));
  auto view = [&]() -> sys::Result<idmap::MapSpec> {
    return idmap::MapSpec{POD_TRY(shift::view_through(lease.uids, m.uids, idmap::IdKind::uid)),
                          POD_TRY(shift::view_through(lease.gids, m.gids, idmap::IdKind::gid))};
  }();
  if (!view) {
    if (!dry_run) (void)release_lease(store_path, lease.name);
    return std::unexpected(view.error());
  }
  out.view = *view;
  return out;
}

namespace {

bool disjoint(const idmap::IdMap& a, const idmap::IdMap& b) {
  return !idmap::host_ids(a).first_common(idmap::host_ids(b));
}

}  // namespace

idmap::InUse lease_files_in_use(sys::FdRef store) {
  return idmap::store_files_in_use(store, [](sys::FdRef shifted, const std::string& name, const idmap::Lease& l) {
    auto to = shift::ShiftCache(shifted).target_of(name);
    if (!to) return false;
    if (*to == shift::canonical_text(idmap::MapSpec{l.uids, l.gids})) return true;
    // A shifted tree holds only ids of the map it was shifted to (and the overflow id,
    // which no lease has): one to a map apart from the lease's need not be walked. Its
    // map is in host ids only for root; an ordinary user's is seen through the store's
    // namespace.
    if (!caller_is_root()) return false;
    auto t = idmap::parse_map_spec(*to);
    return t && disjoint(t->uids, l.uids) && disjoint(t->gids, l.gids);
  });
}

sys::Result<void> release_lease(const std::string& store_path, const std::string& lease_name) {
  sys::Fd ledger = POD_TRY(idmap::open_ledger_dir(store_path));
  auto store = POD_TRY(sys::open_at(sys::FdRef::cwd(), store_path, O_RDONLY | O_DIRECTORY));
  POD_TRY(idmap::release(ledger, lease_name, lease_files_in_use(store)));
  return {};
}

}  // namespace pod::cmd
