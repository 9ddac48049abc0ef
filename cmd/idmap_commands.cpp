// pod idmap list | alloc | release: the range ledger by hand. These commands deal in
// host ids, so unlike the store commands they never enter the store's user namespace:
// the ledger (STORE/idmap) is opened directly.
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "context.hpp"
#include "run_maps.hpp"
#include "pod/idmap/ledger.hpp"
#include "pod/sys/fs.hpp"

namespace pod::cmd {

using json = nlohmann::json;

namespace {

struct Ledger {
  std::string store_path;
  sys::Fd store;
  sys::Fd dir;
};

sys::Result<Ledger> open_ledger() {
  Ledger l;
  l.store_path = globals().root;
  if (l.store_path.empty()) l.store_path = POD_TRY(cas::default_store_path());
  l.dir = POD_TRY(idmap::open_ledger_dir(l.store_path));
  l.store = POD_TRY(sys::open_dir(sys::FdRef::cwd(), l.store_path));
  return l;
}

// The first extent as {"host", "count"} (the CLI.md shape); the full map beside it.
json range_json(const idmap::IdMap& m) {
  if (m.extents.empty()) return nullptr;
  return {{"host", m.extents[0].outer}, {"count", m.extents[0].count}};
}

std::string range_text(const idmap::IdMap& m) {
  if (m.extents.size() == 1 && m.extents[0].inner == 0) {
    auto& e = m.extents[0];
    return fmt::format("{}-{}", e.outer, std::uint64_t{e.outer} + e.count - 1);
  }
  return m.str();
}

int run_list(bool as_json) {
  auto l = open_ledger();
  if (!l) return report(l.error());
  auto leases = idmap::refresh_leases(l->dir, lease_files_in_use(l->store));
  if (!leases) return report(std::move(leases.error()).context("listing leases in '{}/idmap'", l->store_path));
  if (as_json) {
    json out = json::array();
    for (auto& x : *leases)
      out.push_back({{"name", x.name},
                     {"pod", x.pod ? json(*x.pod) : json(nullptr)},
                     {"uid", range_json(x.uids)},
                     {"gid", range_json(x.gids)},
                     {"uid_map", x.uids.str()},
                     {"gid_map", x.gids.str()},
                     {"created", x.created},
                     {"state", idmap::state_name(x.state)}});
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("%-24s %-36s %-24s %-24s %s\n", "NAME", "POD", "UIDS", "GIDS", "STATE");
  for (auto& x : *leases)
    std::printf("%-24s %-36s %-24s %-24s %s\n", x.name.c_str(), x.pod ? x.pod->c_str() : "-",
                range_text(x.uids).c_str(), range_text(x.gids).c_str(), idmap::state_name(x.state));
  return 0;
}

struct AllocArgs {
  std::string name, policy = "auto";
  std::optional<std::uint64_t> size;
};

int run_alloc(const AllocArgs& a) {
  auto fail = [&](sys::Error e) { return report(std::move(e).context("allocating '{}'", a.name)); };
  idmap::AllocRequest req;
  req.name = a.name;
  if (auto r = idmap::check_lease_name(a.name); !r) return fail(r.error());
  auto policy = idmap::Policy::parse(a.policy, a.size);
  if (!policy) return fail(policy.error());
  req.policy = *policy;
  auto l = open_ledger();
  if (!l) return fail(l.error());
  auto allot = idmap::caller_allotment(l->dir, warn);
  if (!allot) return fail(allot.error());
  auto lease = idmap::allocate(l->dir, *allot, req);
  if (!lease) return fail(lease.error());
  std::printf("%s uid %s gid %s\n", lease->name.c_str(), lease->uids.str().c_str(), lease->gids.str().c_str());
  return 0;
}

int run_release(const std::string& name) {
  auto l = open_ledger();
  if (!l) return report(std::move(l.error()).context("releasing '{}'", name));
  auto r = idmap::release(l->dir, name, lease_files_in_use(l->store));
  if (!r) return report(std::move(r.error()).context("releasing '{}'", name));
  if (r->quarantined)
    warn(fmt::format("'{}' is quarantined: files owned by its ids remain ({}); `pod idmap list` frees it once "
                     "they are gone",
                     name, r->path));
  else
    note(fmt::format("released '{}'", name));
  return 0;
}

}  // namespace

void add_idmap_commands(CLI::App& app) {
  auto* idm = app.add_subcommand("idmap", "the ledger of host id ranges (leases)");
  idm->require_subcommand(1);

  static bool list_json = false;
  auto* list = idm->add_subcommand("list", "leases and quarantined ranges; frees quarantined ranges no file uses");
  list->add_flag("--json", list_json, "one JSON document");
  list->callback([] { chosen_action() = [] { return run_list(list_json); }; });

  static AllocArgs aa;
  auto* alloc = idm->add_subcommand("alloc", "lease a range by hand; prints its maps");
  alloc->add_option("--name", aa.name, "[a-z0-9][a-z0-9-]{0,62}")->required();
  alloc->add_option("--size", aa.size, "ids of each kind (default 65536)");
  alloc->add_option("--policy", aa.policy, "auto (first fit), pick (from the name), or a map "
                                           "[u:|g:]CONTAINER:HOST:COUNT[,...]")
      ->capture_default_str();
  alloc->callback([] { chosen_action() = [] { return run_alloc(aa); }; });

  static std::string release_name;
  auto* rel = idm->add_subcommand("release", "end a lease; quarantined while files owned by it remain");
  rel->add_option("NAME", release_name)->required();
  rel->callback([] { chosen_action() = [] { return run_release(release_name); }; });
}

}  // namespace pod::cmd
