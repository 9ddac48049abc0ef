// The probes' cache: STORE/.../probes.json, valid for one boot (the kernel, its
// sysctls and the mounts only change across boots in ways that matter here).
#include <nlohmann/json.hpp>

#include "pod/overlay/probe.hpp"
#include "pod/sys/fs.hpp"

namespace pod::overlay {

using json = nlohmann::json;
using sys::Result;

namespace {

constexpr const char* kCacheFile = "probes.json";

Probe Probes::*const kMembers[] = {&Probes::userns, &Probes::overlay_in_userns, &Probes::idmapped_store,
                                   &Probes::overlay_over_idmapped, &Probes::lowerdir_plus,
                                   &Probes::metacopy_lowers};
const char* const kNames[] = {"userns", "overlay_in_userns", "idmapped_store", "overlay_over_idmapped",
                              "lowerdir_plus", "metacopy_lowers"};

Result<std::string> this_boot() {
  std::string id = POD_TRY_CTX(sys::read_file(sys::FdRef::cwd(), "/proc/sys/kernel/random/boot_id", 64),
                               "reading the boot id");
  while (!id.empty() && id.back() == '\n') id.pop_back();
  return id;
}

}  // namespace

std::vector<std::pair<std::string, const Probe*>> probe_list(const Probes& p) {
  std::vector<std::pair<std::string, const Probe*>> out;
  for (std::size_t i = 0; i < std::size(kMembers); ++i) out.emplace_back(kNames[i], &(p.*kMembers[i]));
  return out;
}

std::string probes_json(const Probes& p) {
  json probes = json::object();
  for (auto& [name, probe] : probe_list(p)) probes[name] = {{"ok", probe->ok}, {"detail", probe->detail}};
  return json{{"boot_id", p.boot_id}, {"probes", probes}}.dump(2) + "\n";
}

Result<Probes> parse_probes_json(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return sys::make_error(EINVAL, "probes: not a JSON object");
  auto id = j.find("boot_id");
  if (id == j.end() || !id->is_string()) return sys::make_error(EINVAL, "probes: \"boot_id\" is not a string");
  auto probes = j.find("probes");
  if (probes == j.end() || !probes->is_object()) return sys::make_error(EINVAL, "probes: \"probes\" is not an object");
  Probes p;
  p.boot_id = id->get<std::string>();
  for (std::size_t i = 0; i < std::size(kMembers); ++i) {
    auto e = probes->find(kNames[i]);
    if (e == probes->end() || !e->is_object()) return sys::make_error(EINVAL, "probes: \"{}\" is missing", kNames[i]);
    auto ok = e->find("ok");
    auto detail = e->find("detail");
    if (ok == e->end() || !ok->is_boolean()) return sys::make_error(EINVAL, "probes: \"{}.ok\" is not a boolean", kNames[i]);
    if (detail == e->end() || !detail->is_string())
      return sys::make_error(EINVAL, "probes: \"{}.detail\" is not a string", kNames[i]);
    p.*kMembers[i] = Probe{ok->get<bool>(), detail->get<std::string>()};
  }
  return p;
}

Result<Probes> cached_probes(sys::FdRef cache_dir, sys::FdRef scratch_parent) {
  std::string boot = POD_TRY(this_boot());
  // A missing, damaged or old cache is no error: the probes run again and replace it.
  if (auto text = sys::read_file(cache_dir, kCacheFile, 1 << 20))
    if (auto p = parse_probes_json(*text); p && p->boot_id == boot) return *p;
  Probes p = run_probes(scratch_parent);
  p.boot_id = boot;
  POD_TRY_CTX(sys::write_file_atomic(cache_dir, kCacheFile, probes_json(p)), "caching the probes");
  return p;
}

}  // namespace pod::overlay
