#include "volume_shift.hpp"

#include <fcntl.h>

#include <algorithm>

#include "pod/runtime/pods.hpp"
#include "pod/shift/acl_grant.hpp"
#include "pod/shift/engine.hpp"
#include "pod/sys/fs.hpp"

namespace pod::cmd {

namespace {

bool at_or_below(const std::string& path, const std::string& dir) {
  return path == dir || (path.starts_with(dir) && (dir == "/" || path[dir.size()] == '/'));
}

void add_once(std::vector<std::uint32_t>& v, std::uint32_t id) {
  if (std::find(v.begin(), v.end(), id) == v.end()) v.push_back(id);
}

}  // namespace

sys::Result<void> refuse_if_in_use(sys::FdRef store_dir, const std::string& dir) {
  std::vector<std::string> damaged;
  auto pods = POD_TRY_CTX(runtime::list_pods(store_dir, &damaged), "the pods of the store");
  for (const auto& p : pods) {
    bool live = p.state == runtime::PodState::running || (p.state == runtime::PodState::prepared && p.locked);
    if (!live) continue;
    for (const auto& src : p.record.volume_sources)
      if (at_or_below(src, dir) || at_or_below(dir, src))
        return sys::make_error(EBUSY, "pod '{}' ({}) is {} with the volume '{}': stop it first (pod stop {})",
                               p.record.name, p.record.uuid, runtime::state_name(p.state), src, p.record.name);
  }
  return {};
}

sys::Result<void> chown_volume(const VolumeSource& v, const idmap::MapSpec& pod_map) {
  if (!v.directory) return sys::make_error(ENOTDIR, "chown re-owns a directory tree; '{}' is a file", v.arg.source);
  std::string base = v.resolved.substr(v.resolved.rfind('/') + 1);
  if (base.empty()) return sys::make_error(EINVAL, "chown of the root directory is refused");
  sys::Fd top = POD_TRY(sys::open_at(v.dir, ".", O_RDONLY | O_DIRECTORY));
  sys::Fd parent = POD_TRY(sys::open_at(v.dir, "..", O_RDONLY | O_DIRECTORY));
  shift::JournalFiles journal(parent, "." + base + ".pod-remap");
  auto found = POD_TRY(journal.read());
  idmap::MapSpec from{inner_identity(pod_map.uids), inner_identity(pod_map.gids)};
  if (found) {
    // Done: the tree is in its target map. Interrupted: resume it (the engine refuses
    // when that run's target is another map than ours).
    auto text = found->state == shift::Journal::State::done ? found->to : found->from;
    from = POD_TRY_CTX(idmap::parse_map_spec(text), "the journal '{}' beside the volume", journal.name());
  }
  if (shift::canonical_text(from) == shift::canonical_text(pod_map) && (!found || found->state == shift::Journal::State::done))
    return {};
  shift::Options o;
  POD_TRY(shift::shift_tree(top, journal, from, pod_map, o));
  return {};
}

sys::Result<void> grant_volume(const VolumeSource& v, const Plan& plan) {
  shift::AclGrant g;
  add_once(g.uids, view_of(plan.maps.view.uids, 0));
  add_once(g.gids, view_of(plan.maps.view.gids, 0));
  for (const auto& a : plan.apps) {
    add_once(g.uids, view_of(plan.maps.view.uids, a.app.uid));
    add_once(g.gids, view_of(plan.maps.view.gids, a.app.gid));
  }
  if (!v.directory) return sys::make_error(ENOTDIR, "acl grants access to a directory tree; '{}' is a file", v.arg.source);
  sys::Fd top = POD_TRY(sys::open_at(v.dir, ".", O_RDONLY | O_DIRECTORY));
  POD_TRY(shift::grant_tree(top, g));
  return {};
}

}  // namespace pod::cmd
