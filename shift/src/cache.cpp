#include "pod/shift/cache.hpp"

#include <dirent.h>
#include <stdio.h>

#include <algorithm>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "pod/idmap/ranges.hpp"
#include "pod/shift/copy.hpp"
#include "pod/sys/fs.hpp"
#include "pod/sys/lock.hpp"

namespace pod::shift {

using json = nlohmann::json;
using sys::FileLock;

namespace {

// A pod's use of an entry is an empty file refs/<key>.<pod>: made and removed in one
// step each (a refs.json rewritten on every start and end cost two atomic writes, some
// 0.2-0.6 ms each on ext4). refs.json of older stores is still read, and emptied as
// its pods go.
constexpr const char* kRefDir = "refs";
constexpr const char* kRefs = "refs.json";
constexpr const char* kLock = "lock";

using Refs = std::map<std::string, std::vector<std::string>>;

bool is_key(std::string_view n) {
  return n.size() == 32 && n.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

Result<Refs> read_legacy_refs(sys::FdRef dir) {
  Refs refs;
  if (!sys::exists_at(dir, kRefs)) return refs;
  std::string text = POD_TRY_CTX(sys::read_file(dir, kRefs, 16 << 20), "reading the shifted-tree references");
  json o = json::parse(text, nullptr, false);
  if (o.is_discarded() || !o.is_object()) return sys::make_error(EINVAL, "{} is not a JSON object", kRefs);
  for (auto& [k, v] : o.items()) {
    if (!v.is_array()) return sys::make_error(EINVAL, "{}: '{}' is not a list of pods", kRefs, k);
    for (auto& p : v)
      if (p.is_string()) refs[k].push_back(p.get<std::string>());
  }
  return refs;
}

Result<Refs> read_refs(sys::FdRef dir) {
  Refs refs = POD_TRY(read_legacy_refs(dir));
  if (!sys::exists_at(dir, kRefDir)) return refs;
  sys::Fd d = POD_TRY(sys::open_at(dir, kRefDir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  for (const auto& name : POD_TRY_CTX(sys::list_dir(d), "listing the shifted-tree references")) {
    auto dot = name.find('.');
    if (dot == std::string::npos || !is_key(std::string_view(name).substr(0, dot))) continue;
    auto& pods = refs[name.substr(0, dot)];
    std::string pod = name.substr(dot + 1);
    if (std::find(pods.begin(), pods.end(), pod) == pods.end()) pods.push_back(std::move(pod));
  }
  return refs;
}

std::string ref_name(std::string_view key, std::string_view pod) { return fmt::format("{}.{}", key, pod); }

Result<void> write_refs(sys::FdRef dir, const Refs& refs) {
  json o = json::object();
  for (auto& [k, pods] : refs)
    if (!pods.empty()) o[k] = pods;
  // Which pods use which entry is state of running pods, which a crash ends anyway: no
  // fsync (two per pod on the start path of a cached tree, some 5 ms here).
  return sys::write_file_atomic(dir, kRefs, o.dump(2) + "\n", 0600, sys::Sync::no);
}

std::string origin_text(std::string_view digest, const std::string& from, const std::string& to, CopyData data) {
  json o{{"tree", digest}, {"from", from}, {"to", to}};
  if (data == CopyData::metacopy) o["data"] = "metacopy";
  return o.dump() + "\n";
}

}  // namespace

std::string cache_key(std::string_view tree_digest, const idmap::MapSpec& source, const idmap::MapSpec& target,
                      CopyData data) {
  // Two FNV-1a hashes over distinct prefixes: 128 bits. Not a security boundary: every
  // entry's origin file is compared in full before it is reused.
  std::string text = fmt::format("{}\n{}\n{}", tree_digest, canonical_text(source), canonical_text(target));
  if (data == CopyData::metacopy) text += "\nmetacopy";
  return fmt::format("{:016x}{:016x}", idmap::name_hash("pod-shift-a\n" + text), idmap::name_hash("pod-shift-b\n" + text));
}

Result<bool> ShiftCache::usable(std::string_view key, std::string_view origin) const {
  std::string k(key);
  if (!sys::exists_at(dir_, k)) return false;
  sys::Fd entry = POD_TRY(sys::open_at(dir_, k, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  auto text = sys::read_file(entry, "origin", 1 << 16);
  return text && *text == origin;
}

std::optional<std::string> ShiftCache::target_of(std::string_view key) const {
  if (!is_key(key)) return std::nullopt;
  auto entry = sys::open_at(dir_, std::string(key), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  if (!entry) return std::nullopt;
  auto text = sys::read_file(*entry, "origin", 1 << 16);
  if (!text) return std::nullopt;
  json j = json::parse(*text, nullptr, false);
  if (!j.is_object() || !j.contains("to") || !j["to"].is_string()) return std::nullopt;
  return j["to"].get<std::string>();
}

Result<CacheEntry> ShiftCache::acquire(sys::FdRef tree_root, std::string_view tree_digest,
                                       const idmap::MapSpec& source, const idmap::MapSpec& target,
                                       std::string_view pod, CopyData data, Unmapped unmapped) {
  if (pod.empty() || pod == "." || pod == ".." || pod.find('/') != std::string_view::npos)
    return sys::make_error(EINVAL, "'{}' cannot name a pod in the shifted-tree references", pod);
  Shift shift = copy_shift(source, target);
  std::string from = canonical_text(source), to = canonical_text(target);
  CacheEntry e;
  e.key = cache_key(tree_digest, source, target, data);
  std::string origin = origin_text(tree_digest, from, to, data);
  // Held across the build: two pods asking for the same entry build it once, and gc
  // never removes what is being handed out.
  FileLock lock = POD_TRY(FileLock::acquire(dir_, kLock, FileLock::Mode::exclusive));
  bool ok = POD_TRY(usable(e.key, origin));
  if (!ok) {
    POD_TRY_CTX(sys::remove_tree(dir_, e.key), "removing the damaged shifted tree {}", e.key);
    std::string tmp = POD_TRY(sys::make_temp_dir(dir_, "tmp-", 0700));
    sys::Fd t = POD_TRY(sys::open_at(dir_, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
    CopyOptions copy{.data = data, .shift = &shift, .unmapped = unmapped};
    POD_TRY_CTX(copy_tree(tree_root, t, "root", copy), "shifting layer {} to {}", tree_digest, to);
    // A metadata-only entry holds no data but its origin, and journaling filesystems
    // keep metadata in order: after a crash it is whole, or its origin is missing or
    // empty and it is rebuilt. No flush then (some 25 ms of a first pod on ext4). Full
    // copies keep the flushes of their origin and of the cache directory.
    bool flush = data == CopyData::full;
    // Written last: an entry without it (or with another) is never reused.
    POD_TRY(sys::write_file_atomic(t, "origin", origin, 0600, flush ? sys::Sync::yes : sys::Sync::no));
    // Named only once complete, so a reader never meets a half-shifted entry.
    if (::renameat(dir_.get(), tmp.c_str(), dir_.get(), e.key.c_str()) < 0)
      return sys::sys_error("naming the shifted tree {}", e.key);
    if (flush) POD_TRY(sys::fsync_fd(dir_));
    e.built = true;
  }
  sys::Fd entry = POD_TRY(sys::open_at(dir_, e.key, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  e.root = POD_TRY(sys::open_at(entry, "root", O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  POD_TRY(sys::ensure_dir(dir_, kRefDir, 0700));
  sys::Fd refs = POD_TRY(sys::open_at(dir_, kRefDir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  POD_TRY_CTX(sys::open_at(refs, ref_name(e.key, pod), O_WRONLY | O_CREAT | O_NOFOLLOW, 0600),
              "recording pod {}'s use of the shifted tree {}", pod, e.key);
  return e;
}

Result<void> ShiftCache::release(std::string_view key, std::string_view pod) {
  FileLock lock = POD_TRY(FileLock::acquire(dir_, kLock, FileLock::Mode::exclusive));
  if (sys::exists_at(dir_, kRefDir)) {
    sys::Fd refs = POD_TRY(sys::open_at(dir_, kRefDir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
    if (::unlinkat(refs.get(), ref_name(key, pod).c_str(), 0) != 0 && errno != ENOENT)
      return sys::sys_error("removing pod {}'s use of the shifted tree {}", pod, key);
  }
  Refs legacy = POD_TRY(read_legacy_refs(dir_));
  auto it = legacy.find(std::string(key));
  if (it == legacy.end() || std::find(it->second.begin(), it->second.end(), pod) == it->second.end()) return {};
  std::erase(it->second, std::string(pod));
  return write_refs(dir_, legacy);
}

Result<std::vector<std::pair<std::string, std::vector<std::string>>>> ShiftCache::refs() const {
  FileLock lock = POD_TRY(FileLock::acquire(dir_, kLock, FileLock::Mode::shared));
  Refs r = POD_TRY(read_refs(dir_));
  return std::vector<std::pair<std::string, std::vector<std::string>>>(r.begin(), r.end());
}

Result<std::vector<std::string>> ShiftCache::gc() {
  FileLock lock = POD_TRY(FileLock::acquire(dir_, kLock, FileLock::Mode::exclusive));
  Refs refs = POD_TRY(read_refs(dir_));
  std::vector<std::string> names;
  {
    DIR* d = ::fdopendir(::openat(dir_.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!d) return sys::sys_error("listing the shifted trees");
    std::unique_ptr<DIR, int (*)(DIR*)> guard(d, ::closedir);
    while (dirent* ent = ::readdir(d)) {
      std::string n = ent->d_name;
      bool referenced = refs.count(n) && !refs[n].empty();
      if ((is_key(n) && !referenced) || n.starts_with("tmp-")) names.push_back(n);
    }
  }
  for (auto& n : names) POD_TRY_CTX(sys::remove_tree(dir_, n), "removing the shifted tree {}", n);
  if (sys::exists_at(dir_, kRefs)) {
    Refs legacy = POD_TRY(read_legacy_refs(dir_));
    std::erase_if(legacy, [](auto& kv) { return kv.second.empty(); });
    POD_TRY(write_refs(dir_, legacy));
  }
  return names;
}

}  // namespace pod::shift
