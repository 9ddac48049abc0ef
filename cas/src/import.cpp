#include "pod/cas/import.hpp"

#include <nlohmann/json.hpp>

#include "pod/sys/fs.hpp"

namespace pod::cas {

using json = nlohmann::json;
using sys::FdRef;
using sys::make_error;

namespace {

// A blob the import needs: staged by ingest, or already in the store.
Result<Fd> open_needed(const Store& store, FdRef staged, const Digest& d) {
  auto fd = sys::open_at(staged, d.hex, O_RDONLY | O_NOFOLLOW);
  if (fd) return fd;
  if (store.has_blob(d)) return store.open_blob(d);
  return make_error(ENOENT, "blob {} is missing from the image", d.str());
}

Result<std::string> read_json_blob(const Store& store, FdRef staged, const Descriptor& d,
                                   std::string_view what, const Limits& limits) {
  if (d.size > limits.max_json_bytes)
    return make_error(EFBIG, "{} {} is {} bytes, more than the limit of {} (--max-json-bytes)", what,
                      d.digest.str(), d.size, limits.max_json_bytes);
  Fd fd = POD_TRY_CTX(open_needed(store, staged, d.digest), "{}", what);
  std::string text = POD_TRY_CTX(sys::read_fd(fd, limits.max_json_bytes), "{} {}", what, d.digest.str());
  if (text.size() != d.size)
    return make_error(EINVAL, "{} {}: size is {} bytes, the descriptor says {}", what, d.digest.str(), text.size(),
                      d.size);
  if (Digest got = sha256_of(text); got != d.digest)
    return make_error(EINVAL, "{} {}: content hashes to {}", what, d.digest.str(), got.str());
  return text;
}

std::optional<ImageName> name_from_source(const std::string& source) {
  // A bare tag ("latest", as skopeo writes oci-archive refs) names no image.
  if (source.find(':') == std::string::npos) return std::nullopt;
  auto n = ImageName::parse(source);
  if (!n) return std::nullopt;
  return *n;
}

std::string tree_record_json(const Descriptor& layer, const TreeSummary& s, const OwnershipBasis& basis) {
  json j = {{"layer", layer.digest.str()},
            {"diff_id", s.diff_id.str()},
            {"basis", basis.description},
            {"ownership", basis.ownership == Ownership::exact ? "exact" : "rootless-xattr"},
            {"overlay_xattrs", basis.overlay_xattrs == OverlayXattrs::trusted ? "trusted" : "user"},
            {"entries", s.entries},
            {"bytes", s.bytes},
            {"uids", s.uids},
            {"gids", s.gids}};
  return j.dump(1) + "\n";
}

}  // namespace

Result<StagingArea> StagingArea::create(const Store& store) {
  std::string name = POD_TRY(sys::make_temp_dir(store.tmp_dir(), "import-"));
  StagingArea area(store.tmp_dir(), std::move(name));
  Fd dir = POD_TRY(sys::open_dir(area.tmp_, area.name_));
  POD_TRY(sys::ensure_dir(dir, "blobs", 0700));
  POD_TRY(sys::ensure_dir(dir, "trees", 0700));
  area.blobs_ = POD_TRY(sys::open_dir(dir, "blobs"));
  area.trees_ = POD_TRY(sys::open_dir(dir, "trees"));
  return area;
}

StagingArea::StagingArea(StagingArea&& o) noexcept
    : tmp_(o.tmp_), name_(std::exchange(o.name_, {})), blobs_(std::move(o.blobs_)), trees_(std::move(o.trees_)) {}

StagingArea::~StagingArea() {
  if (!name_.empty()) (void)sys::remove_tree(tmp_, name_);
}

Result<void> unpack_to_staging(const StagingArea& staging, FdRef stream, const Descriptor& layer,
                               const Digest& diff_id, const ImportOptions& opts, std::string progress_label) {
  POD_TRY(sys::ensure_dir(staging.trees(), layer.digest.hex, 0700));
  Fd tree = POD_TRY(sys::open_dir(staging.trees(), layer.digest.hex));
  POD_TRY(sys::ensure_dir(tree, "root", 0755));
  Fd root = POD_TRY(sys::open_dir(tree, "root"));
  Fd list = POD_TRY(sys::open_at(tree, "files.jsonl", O_WRONLY | O_CREAT | O_EXCL, 0600));
  UnpackOptions uo;
  uo.ownership = opts.basis.ownership;
  uo.overlay_xattrs = opts.basis.overlay_xattrs;
  uo.limits = opts.ingest.limits;
  uo.expected_diff_id = diff_id;
  uo.warn = opts.warn;
  uo.progress_total = layer.size;
  uo.progress_label = std::move(progress_label);
  TreeSummary s = POD_TRY_CTX(unpack_layer(stream, root, list, uo), "layer {}", layer.digest.str());
  // tree.json is written last: its presence says the tree is complete.
  Fd rec = POD_TRY(sys::open_at(tree, "tree.json", O_WRONLY | O_CREAT | O_EXCL, 0644));
  POD_TRY(sys::write_all(rec, tree_record_json(layer, s, opts.basis)));
  return {};
}

Result<ImportResult> import_image(Store& store, FdRef dir, std::string_view path, const ImportOptions& opts) {
  StagingArea staging = POD_TRY(StagingArea::create(store));
  IngestOptions io = opts.ingest;
  io.warn = opts.warn;
  io.open_stored = [&store](const Digest& d) -> std::optional<Fd> {
    if (!store.has_blob(d)) return std::nullopt;
    auto fd = store.open_blob(d);
    if (!fd) return std::nullopt;
    return std::move(*fd);
  };
  IngestedImage img = POD_TRY(ingest(dir, path, staging.blobs(), io));
  return finish_import(store, staging, img, opts);
}

Result<ImportResult> finish_import(Store& store, const StagingArea& staging, const IngestedImage& img,
                                   const ImportOptions& opts) {
  FdRef sblobs = staging.blobs();
  FdRef strees = staging.trees();
  const Limits& limits = opts.ingest.limits;
  std::string mtext = POD_TRY(read_json_blob(store, sblobs, img.manifest, "manifest", limits));
  Manifest m = POD_TRY_CTX(parse_manifest(mtext), "manifest {}", img.manifest.digest.str());
  std::string ctext = POD_TRY(read_json_blob(store, sblobs, m.config, "config", limits));
  ImageConfig cfg = POD_TRY_CTX(parse_config(ctext), "config {}", m.config.digest.str());
  if (cfg.diff_ids.size() != m.layers.size())
    return make_error(EINVAL, "config {} lists {} diff_ids for {} layers", m.config.digest.str(),
                      cfg.diff_ids.size(), m.layers.size());
  if (opts.warn && !cfg.architecture.empty() && cfg.architecture != opts.ingest.platform.architecture)
    opts.warn(fmt::format("the image is for {}/{}, this machine is {}", cfg.os, cfg.architecture,
                          opts.ingest.platform.str()));

  std::vector<Digest> new_trees;
  for (std::size_t i = 0; i < m.layers.size(); ++i) {
    const Descriptor& layer = m.layers[i];
    if (store.has_tree(layer.digest)) {
      TreeRecord rec = POD_TRY(read_tree_record(store, layer.digest));
      if (rec.basis != opts.basis.description)
        return make_error(EINVAL,
                          "layer {} was unpacked for ids '{}', but the store now maps '{}'; "
                          "remove the images that use it and run pod image gc",
                          layer.digest.str(), rec.basis, opts.basis.description);
      if (rec.diff_id != cfg.diff_ids[i])
        return make_error(EINVAL, "layer {}: config says diff_id {}, the stored tree has {}", layer.digest.str(),
                          cfg.diff_ids[i].str(), rec.diff_id.str());
      continue;
    }
    if (std::find(new_trees.begin(), new_trees.end(), layer.digest) != new_trees.end()) continue;
    if (!sys::exists_at(strees, layer.digest.hex + "/tree.json")) {
      Fd blob = POD_TRY(open_needed(store, sblobs, layer.digest));
      struct stat st = POD_TRY(sys::stat_fd(blob));
      if (static_cast<std::uint64_t>(st.st_size) != layer.size)
        return make_error(EINVAL, "layer {}: size is {} bytes, the descriptor says {}", layer.digest.str(),
                          st.st_size, layer.size);
      POD_TRY(unpack_to_staging(staging, blob, layer, cfg.diff_ids[i], opts,
                                fmt::format("layer {}/{} {}", i + 1, m.layers.size(), layer.digest.hex.substr(0, 12))));
    }
    new_trees.push_back(layer.digest);
  }

  // Everything is verified: make it durable, then visible, refs last.
  std::vector<Digest> needed{img.manifest.digest, m.config.digest};
  for (auto& l : m.layers) needed.push_back(l.digest);
  bool staged_any = !new_trees.empty();
  for (auto& d : needed)
    if (!store.has_blob(d) && sys::exists_at(sblobs, d.hex)) staged_any = true;
  if (staged_any) {
    POD_TRY(store.sync_all());
    for (auto& d : needed)
      if (!store.has_blob(d) && sys::exists_at(sblobs, d.hex)) POD_TRY(store.adopt_blob(sblobs, d.hex, d));
    for (auto& d : new_trees) POD_TRY(store.adopt_tree(strees, d.hex, d));
    POD_TRY(store.sync_all());
  }

  ImportResult result;
  result.manifest = img.manifest;
  result.manifest.annotations.clear();
  result.manifest.platform.reset();
  result.format = img.format;
  result.name = opts.name ? opts.name : name_from_source(img.source_name);
  bool ref_changed = POD_TRY(store.set_ref(result.name, result.manifest));
  result.changed = staged_any || ref_changed;
  return result;
}

}  // namespace pod::cas
