// docker-archive: `docker save`, `podman save`, `skopeo copy ... docker-archive:`.
// Member names are not digests (except in Docker 25+'s blobs/sha256/), so every member
// is staged by hashing its content, and an OCI manifest is made from manifest.json.
#include <map>
#include <set>
#include <vector>

#include "ingest_internal.hpp"
#include "pod/sys/fs.hpp"

namespace pod::cas::detail {

using sys::make_error;

namespace {

struct Entry {
  std::string config;
  std::vector<std::string> tags;
  std::vector<std::string> layers;
};

Result<std::vector<Entry>> parse_docker_manifest(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return make_error(EINVAL, "manifest.json is not valid JSON");
  if (!j.is_array()) return make_error(EINVAL, "manifest.json is not a JSON array");
  std::vector<Entry> out;
  for (std::size_t i = 0; i < j.size(); ++i) {
    const json& o = j[i];
    auto what = fmt::format("manifest.json entry {}", i);
    if (!o.is_object()) return make_error(EINVAL, "{} is not an object", what);
    Entry e;
    auto c = o.find("Config");
    if (c == o.end() || !c->is_string()) return make_error(EINVAL, "{}: 'Config' is missing or not a string", what);
    e.config = c->get<std::string>();
    if (auto t = o.find("RepoTags"); t != o.end() && !t->is_null()) {
      if (!t->is_array()) return make_error(EINVAL, "{}: 'RepoTags' is not an array", what);
      for (auto& v : *t) {
        if (!v.is_string()) return make_error(EINVAL, "{}: a RepoTags entry is not a string", what);
        e.tags.push_back(v.get<std::string>());
      }
    }
    auto l = o.find("Layers");
    if (l == o.end() || !l->is_array()) return make_error(EINVAL, "{}: 'Layers' is missing or not an array", what);
    for (auto& v : *l) {
      if (!v.is_string()) return make_error(EINVAL, "{}: a Layers entry is not a string", what);
      e.layers.push_back(v.get<std::string>());
    }
    out.push_back(std::move(e));
  }
  if (out.empty()) return make_error(EINVAL, "manifest.json lists no images");
  return out;
}

// "busybox", "docker.io/library/busybox:latest" and "busybox:latest" are one name.
std::string normalise_ref(std::string_view ref) {
  for (std::string_view p : {"docker.io/library/", "index.docker.io/library/", "docker.io/", "index.docker.io/"})
    if (ref.starts_with(p)) {
      ref.remove_prefix(p.size());
      break;
    }
  std::string out(ref);
  auto slash = ref.rfind('/');
  auto colon = ref.rfind(':');
  if (colon == std::string_view::npos || (slash != std::string_view::npos && colon < slash)) out += ":latest";
  return out;
}

// A relative member name with no empty, "." or ".." component.
bool plain_member(std::string_view n) {
  if (n.empty() || n.front() == '/' || n.find('\0') != std::string_view::npos) return false;
  std::size_t i = 0;
  while (i <= n.size()) {
    std::size_t j = n.find('/', i);
    if (j == std::string_view::npos) j = n.size();
    std::string_view c = n.substr(i, j - i);
    if (c.empty() || c == "." || c == "..") return false;
    i = j + 1;
  }
  return true;
}

// Old `docker save` writes a repeated layer as a symlink "../<id>/layer.tar": the
// member it names, lexically, or "" if it leaves the archive.
std::string link_target(std::string_view member, std::string_view target) {
  if (target.starts_with('/')) return {};
  std::vector<std::string_view> parts;
  auto slash = member.rfind('/');
  std::string joined = slash == std::string_view::npos ? std::string(target)
                                                       : std::string(member.substr(0, slash + 1)) + std::string(target);
  std::string_view s = joined;
  std::size_t i = 0;
  while (i <= s.size()) {
    std::size_t j = s.find('/', i);
    if (j == std::string_view::npos) j = s.size();
    std::string_view c = s.substr(i, j - i);
    if (c == "..") {
      if (parts.empty()) return {};
      parts.pop_back();
    } else if (!c.empty() && c != ".") {
      parts.push_back(c);
    }
    i = j + 1;
  }
  std::string out;
  for (auto p : parts) {
    if (!out.empty()) out.push_back('/');
    out.append(p);
  }
  return out;
}

Result<std::string> layer_media_type(const StagedBlob& b, std::string_view name) {
  auto& h = b.head;
  if (h[0] == 0x1f && h[1] == 0x8b) return std::string(media::kOciLayerGzip);
  if (h[0] == 0x28 && h[1] == 0xb5 && h[2] == 0x2f && h[3] == 0xfd) return std::string(media::kOciLayerZstd);
  if (h[0] == 'B' && h[1] == 'Z' && h[2] == 'h')
    return make_error(EINVAL, "layer '{}' is bzip2-compressed, which OCI has no media type for", name);
  if (h[0] == 0xfd && h[1] == '7' && h[2] == 'z' && h[3] == 'X' && h[4] == 'Z')
    return make_error(EINVAL, "layer '{}' is xz-compressed, which OCI has no media type for", name);
  return std::string(media::kOciLayer);
}

// Metadata members no manifest names; not worth staging.
bool ignored_member(std::string_view n) {
  return n == "index.json" || n == "oci-layout" || n == "repositories" || n.ends_with("/json") ||
         n.ends_with("/VERSION");
}

}  // namespace

Result<IngestedImage> ingest_docker(FdRef file, const IngestOptions& opts, FdRef staging) {
  const std::uint64_t limit = opts.limits.max_json_bytes;
  ArchiveReader a = POD_TRY(open_tar(file));
  std::optional<std::string> manifest_text;
  std::map<std::string, StagedBlob> members;
  std::map<std::string, std::string> links;  // member → the member it stands for
  std::uint64_t count = 0;
  struct archive_entry* e = nullptr;
  while (POD_TRY(next_member(a.get(), &e))) {
    if (++count > opts.limits.max_members)
      return make_error(EINVAL, "the archive has too many members (more than {})", opts.limits.max_members);
    std::string name = member_name(archive_entry_pathname(e));
    auto type = archive_entry_filetype(e);
    if (const char* h = archive_entry_hardlink(e)) {
      links[name] = member_name(h);
    } else if (type == AE_IFLNK) {
      const char* t = archive_entry_symlink(e);
      links[name] = link_target(name, t ? t : "");
    } else if (type == AE_IFREG && name == "manifest.json") {
      manifest_text = POD_TRY_CTX(read_member(a.get(), limit), "member 'manifest.json'");
      continue;
    } else if (type == AE_IFREG && !ignored_member(name)) {
      std::string_view n = name;
      std::optional<Descriptor> named;
      if (n.starts_with("blobs/sha256/") && Digest::valid_hex(n.substr(13)))
        named = Descriptor{"", Digest{std::string(n.substr(13))}, static_cast<std::uint64_t>(archive_entry_size(e)),
                           {}, {}};
      BlobWriter w = POD_TRY(BlobWriter::create(staging));
      POD_TRY_CTX(copy_member(a.get(), w), "member '{}'", name);
      members[name] = POD_TRY_CTX(w.commit(named ? &*named : nullptr), "member '{}'", name);
      continue;
    }
    POD_TRY_CTX(skip_member(a.get()), "member '{}'", name);
  }
  if (!manifest_text) return make_error(EINVAL, "not a docker archive: no manifest.json member");
  std::vector<Entry> entries = POD_TRY(parse_docker_manifest(*manifest_text));

  const Entry* chosen = nullptr;
  std::string available;
  for (auto& en : entries)
    for (auto& t : en.tags) available += (available.empty() ? "" : ", ") + t;
  if (available.empty()) available = "none";
  if (!opts.source_ref.empty()) {
    std::string want = normalise_ref(opts.source_ref);
    for (auto& en : entries)
      for (auto& t : en.tags)
        if (!chosen && normalise_ref(t) == want) chosen = &en;
    if (!chosen)
      return make_error(EINVAL, "manifest.json has no image tagged '{}' (available: {})", opts.source_ref,
                        available);
  } else if (entries.size() == 1) {
    chosen = &entries.front();
  } else {
    return make_error(EINVAL, "manifest.json lists several images; choose one by name (available: {})", available);
  }

  auto lookup = [&](const std::string& ref, std::string_view what) -> Result<StagedBlob> {
    if (!plain_member(ref)) return make_error(EINVAL, "manifest.json: {} '{}' is not a plain member name", what, ref);
    std::string n = ref;
    for (int hops = 0; hops < 16; ++hops) {
      if (auto it = members.find(n); it != members.end()) return it->second;
      auto l = links.find(n);
      if (l == links.end() || l->second.empty()) break;
      n = l->second;
    }
    return make_error(EINVAL, "manifest.json names {} '{}', which is not in the archive", what, ref);
  };
  StagedBlob config = POD_TRY(lookup(chosen->config, "config"));
  std::set<std::string> used{config.digest.hex};
  std::vector<Descriptor> layers;
  for (auto& l : chosen->layers) {
    StagedBlob b = POD_TRY(lookup(l, "layer"));
    used.insert(b.digest.hex);
    layers.push_back(Descriptor{POD_TRY(layer_media_type(b, l)), b.digest, b.size, {}, {}});
  }
  Fd cfd = POD_TRY(open_staged(staging, config.digest));
  std::string config_text = POD_TRY_CTX(sys::read_fd(cfd, limit), "config '{}'", chosen->config);
  ImageConfig cfg = POD_TRY_CTX(parse_config(config_text), "config '{}'", chosen->config);
  if (cfg.diff_ids.size() != layers.size())
    return make_error(EINVAL, "config '{}' lists {} diff_ids but manifest.json names {} layers", chosen->config,
                      cfg.diff_ids.size(), layers.size());
  // An uncompressed layer is its own diff_id: a cheap check that the right members were named.
  for (std::size_t i = 0; i < layers.size(); ++i)
    if (layers[i].media_type == media::kOciLayer && layers[i].digest != cfg.diff_ids[i])
      return make_error(EINVAL, "layer '{}' hashes to {} but the config's diff_id {} is {}", chosen->layers[i],
                        layers[i].digest.str(), i, cfg.diff_ids[i].str());

  Descriptor man = POD_TRY(stage_manifest(staging, config, std::move(layers)));
  for (auto& [name, b] : members)
    if (!used.contains(b.digest.hex)) ::unlinkat(staging.get(), b.digest.hex.c_str(), 0);
  return IngestedImage{Format::docker_archive, man, chosen->tags.empty() ? std::string() : chosen->tags.front()};
}

}  // namespace pod::cas::detail
