#include "pod/cas/store.hpp"

#include <dirent.h>
#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "pod/sys/fs.hpp"

namespace pod::cas {

using json = nlohmann::json;
using sys::FdRef;
using sys::make_error;
using sys::sys_error;

namespace {

constexpr std::string_view kOciLayout = R"({"imageLayoutVersion":"1.0.0"})";
constexpr std::uint64_t kIndexLimit = 64u << 20;

Result<std::vector<Digest>> list_digests(FdRef dir) {
  std::vector<Digest> out;
  for (auto& n : POD_TRY(sys::list_dir(dir)))
    if (Digest::valid_hex(n)) out.push_back(Digest{n});
  return out;
}

json index_skeleton() {
  return {{"schemaVersion", 2}, {"mediaType", media::kOciIndex}, {"manifests", json::array()}};
}

}  // namespace

Result<std::string> default_store_path() {
  if (const char* env = std::getenv("POD_ROOT"); env && *env) return std::string(env);
  if (::geteuid() == 0) return std::string("/var/lib/pod");
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && *xdg && xdg[0] == '/')
    return std::string(xdg) + "/pod";
  const char* home = std::getenv("HOME");
  if (!home || home[0] != '/') {
    struct passwd* pw = ::getpwuid(::getuid());
    if (!pw) return make_error(ENOENT, "no home directory for uid {}; give --root", ::getuid());
    home = pw->pw_dir;
  }
  return std::string(home) + "/.local/share/pod";
}

Result<Store> Store::open(std::string_view path, sys::FileLock::Mode mode) {
  Store s;
  s.path_ = std::string(path);
  s.dir_ = POD_TRY_CTX(sys::make_dirs(s.path_, 0700), "opening the store '{}'", path);
  for (const char* d : {"blobs", "trees", "tmp"}) POD_TRY(sys::ensure_dir(s.dir_, d, 0700));
  sys::Fd blobs = POD_TRY(sys::open_dir(s.dir_, "blobs"));
  POD_TRY(sys::ensure_dir(blobs, "sha256", 0755));
  s.blobs_ = POD_TRY(sys::open_dir(blobs, "sha256"));
  s.trees_ = POD_TRY(sys::open_dir(s.dir_, "trees"));
  s.tmp_ = POD_TRY(sys::open_dir(s.dir_, "tmp"));

  // Alone (the exclusive lock is free)? Then tmp/ holds only debris: remove it.
  auto excl = sys::FileLock::acquire(s.dir_, "lock", sys::FileLock::Mode::exclusive, false);
  if (excl) {
    for (auto& name : POD_TRY(sys::list_dir(s.tmp_)))
      POD_TRY_CTX(sys::remove_tree(s.tmp_, name), "removing debris in '{}/tmp'", path);
    if (mode == sys::FileLock::Mode::shared) POD_TRY(excl->change(mode));
    s.lock_.emplace(std::move(*excl));
  } else if (excl.error().code == EWOULDBLOCK) {
    s.lock_.emplace(POD_TRY(sys::FileLock::acquire(s.dir_, "lock", mode, true)));
  } else {
    return sys::Unexpected(std::move(excl.error()).context("store '{}'", path));
  }
  // The layout files, made once; the store is itself an OCI image layout.
  if (!sys::exists_at(s.dir_, "oci-layout")) POD_TRY(sys::write_file_atomic(s.dir_, "oci-layout", kOciLayout));
  if (!sys::exists_at(s.dir_, "index.json"))
    POD_TRY(sys::write_file_atomic(s.dir_, "index.json", index_skeleton().dump()));
  return s;
}

bool Store::has_blob(const Digest& d) const { return sys::exists_at(blobs_, d.hex); }

Result<Fd> Store::open_blob(const Digest& d) const {
  return POD_TRY_CTX(sys::open_at(blobs_, d.hex, O_RDONLY | O_NOFOLLOW), "blob {}", d.str());
}

Result<std::string> Store::read_blob(const Digest& d, std::uint64_t limit) const {
  Fd fd = POD_TRY(open_blob(d));
  std::string data = POD_TRY_CTX(sys::read_fd(fd, limit), "blob {}", d.str());
  if (sha256_of(data) != d) return make_error(EIO, "blob {} in the store is damaged (run pod image verify)", d.str());
  return data;
}

Result<void> Store::adopt_blob(FdRef from, std::string_view name, const Digest& d) {
  std::string n(name);
  if (has_blob(d)) return {};
  if (::fchmodat(from.get(), n.c_str(), 0444, 0) != 0) return sys_error("chmod blob {}", d.str());
  if (::renameat(from.get(), n.c_str(), blobs_.get(), d.hex.c_str()) != 0)
    return sys_error("moving blob {} into the store", d.str());
  return {};
}

Result<std::vector<Digest>> Store::list_blobs() const { return list_digests(blobs_); }

Result<void> Store::remove_blob(const Digest& d) {
  if (::unlinkat(blobs_.get(), d.hex.c_str(), 0) != 0 && errno != ENOENT) return sys_error("removing blob {}", d.str());
  return {};
}

bool Store::has_tree(const Digest& layer) const {
  return sys::exists_at(trees_, layer.hex + "/tree.json");
}

Result<Fd> Store::open_tree(const Digest& layer) const {
  return POD_TRY_CTX(sys::open_at(trees_, layer.hex, O_RDONLY | O_DIRECTORY | O_NOFOLLOW), "tree {}", layer.str());
}

Result<void> Store::adopt_tree(FdRef from, std::string_view name, const Digest& layer) {
  std::string n(name);
  if (::renameat(from.get(), n.c_str(), trees_.get(), layer.hex.c_str()) == 0) return {};
  // Another import finished the same tree first (ENOTEMPTY/EEXIST): ours is debris.
  if (errno == ENOTEMPTY || errno == EEXIST) return {};
  return sys_error("moving tree {} into the store", layer.str());
}

Result<std::vector<Digest>> Store::list_trees() const { return list_digests(trees_); }

Result<void> Store::remove_tree(const Digest& layer) {
  // Renamed into tmp/ first so that a half-removed tree never looks like a tree.
  std::string doomed = fmt::format("rm-{}-{}", layer.hex.substr(0, 12), sys::random_hex(4));
  if (::renameat(trees_.get(), layer.hex.c_str(), tmp_.get(), doomed.c_str()) != 0) {
    if (errno == ENOENT) return {};
    return sys_error("removing tree {}", layer.str());
  }
  POD_TRY_CTX(sys::remove_tree(tmp_, doomed), "removing tree {}", layer.str());
  return {};
}

Result<void> Store::sync_all() {
  if (::syncfs(dir_.get()) != 0) return sys_error("syncfs of the store");
  return {};
}

namespace {

Result<json> load_index(FdRef dir) {
  std::string text = POD_TRY_CTX(sys::read_file(dir, "index.json", kIndexLimit), "the store's index");
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("manifests") || !j["manifests"].is_array())
    return make_error(EINVAL, "the store's index.json is damaged");
  return j;
}

Result<Ref> ref_from(const json& entry) {
  Ref r;
  r.manifest = POD_TRY_CTX(parse_descriptor(entry.dump()), "the store's index.json");
  if (auto it = r.manifest.annotations.find(std::string(kRefNameAnnotation)); it != r.manifest.annotations.end())
    if (auto n = ImageName::parse(it->second)) r.name = *n;
  return r;
}

bool names_equal(const std::optional<ImageName>& a, const std::optional<ImageName>& b) {
  if (a.has_value() != b.has_value()) return false;
  return !a || a->str() == b->str();
}

}  // namespace

Result<std::vector<Ref>> Store::refs() const {
  json j = POD_TRY(load_index(dir_));
  std::vector<Ref> out;
  for (auto& e : j["manifests"]) out.push_back(POD_TRY(ref_from(e)));
  return out;
}

Result<bool> Store::set_ref(const std::optional<ImageName>& name, const Descriptor& manifest) {
  auto guard = POD_TRY(sys::FileLock::acquire(dir_, "refs.lock", sys::FileLock::Mode::exclusive));
  json j = POD_TRY(load_index(dir_));
  json kept = json::array();
  bool same_present = false;
  for (auto& e : j["manifests"]) {
    Ref r = POD_TRY(ref_from(e));
    bool same_name = name ? names_equal(r.name, name) : (!r.name && r.manifest.digest == manifest.digest);
    if (same_name) {
      if (r.manifest.digest == manifest.digest) same_present = true;
      else continue;  // the name moves to the new manifest
    }
    kept.push_back(e);
  }
  if (same_present && kept.size() == j["manifests"].size()) return false;
  Descriptor d = manifest;
  d.annotations.clear();
  if (name) d.annotations[std::string(kRefNameAnnotation)] = name->str();
  if (!same_present) kept.push_back(json::parse(descriptor_json(d)));
  j["manifests"] = kept;
  POD_TRY(sys::write_file_atomic(dir_, "index.json", j.dump()));
  return true;
}

Result<std::vector<Ref>> Store::remove_refs(std::string_view image) {
  auto guard = POD_TRY(sys::FileLock::acquire(dir_, "refs.lock", sys::FileLock::Mode::exclusive));
  Ref target = POD_TRY(resolve(image));
  bool by_name = target.name && (image.find("sha256:") == std::string_view::npos) &&
                 ImageName::parse(image).has_value() && ImageName::parse(image)->str() == target.name->str();
  json j = POD_TRY(load_index(dir_));
  json kept = json::array();
  std::vector<Ref> removed;
  for (auto& e : j["manifests"]) {
    Ref r = POD_TRY(ref_from(e));
    bool match = by_name ? names_equal(r.name, target.name) : r.manifest.digest == target.manifest.digest;
    if (match)
      removed.push_back(r);
    else
      kept.push_back(e);
  }
  j["manifests"] = kept;
  POD_TRY(sys::write_file_atomic(dir_, "index.json", j.dump()));
  return removed;
}

Result<Ref> Store::resolve(std::string_view image) const {
  std::vector<Ref> all = POD_TRY(refs());
  // A name first: "busybox" means busybox:latest, and, as docker load shows them,
  // names from Docker Hub answer without "docker.io/" or "docker.io/library/".
  if (auto n = ImageName::parse(image)) {
    for (const char* prefix : {"", "docker.io/", "docker.io/library/"})
      for (auto& r : all)
        if (r.name && r.name->str() == prefix + n->str()) return r;
  }
  std::string_view hex = image;
  if (hex.starts_with("sha256:")) hex.remove_prefix(7);
  bool is_hex = hex.size() >= 4 && hex.size() <= 64 &&
                hex.find_first_not_of("0123456789abcdef") == std::string_view::npos;
  if (is_hex) {
    std::optional<Ref> found;
    for (auto& r : all) {
      if (!r.manifest.digest.hex.starts_with(hex)) continue;
      if (found && found->manifest.digest != r.manifest.digest)
        return make_error(EINVAL, "'{}' is ambiguous: it begins {} and {}", image, found->manifest.digest.short_str(),
                          r.manifest.digest.short_str());
      if (!found) found = r;
    }
    if (found) return *found;
  }
  return make_error(ENOENT, "no image '{}' in the store", image);
}

}  // namespace pod::cas
