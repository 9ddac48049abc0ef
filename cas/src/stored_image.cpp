#include "pod/cas/stored_image.hpp"

#include <nlohmann/json.hpp>

#include "pod/cas/limits.hpp"
#include "pod/cas/oci.hpp"
#include "pod/sys/fs.hpp"

namespace pod::cas {

using json = nlohmann::json;
using sys::make_error;

Result<TreeRecord> read_tree_record(const Store& store, const Digest& layer) {
  Fd tree = POD_TRY(store.open_tree(layer));
  std::string text = POD_TRY_CTX(sys::read_file(tree, "tree.json", 1 << 20), "tree {}", layer.str());
  json j = json::parse(text, nullptr, false);
  auto damaged = [&] { return make_error(EINVAL, "tree {}: tree.json is damaged", layer.str()); };
  if (j.is_discarded() || !j.is_object()) return damaged();
  TreeRecord r;
  r.layer = layer;
  auto diff = Digest::parse(j.value("diff_id", ""));
  if (!diff) return damaged();
  r.diff_id = *diff;
  r.basis = j.value("basis", "");
  r.entries = j.value("entries", std::uint64_t{0});
  r.bytes = j.value("bytes", std::uint64_t{0});
  if (j.contains("uids") && j["uids"].is_array())
    for (auto& v : j["uids"]) r.uids.push_back(v.get<std::uint32_t>());
  if (j.contains("gids") && j["gids"].is_array())
    for (auto& v : j["gids"]) r.gids.push_back(v.get<std::uint32_t>());
  return r;
}

Result<StoredImage> load_image(const Store& store, const Ref& ref) {
  StoredImage img;
  img.ref = ref;
  Limits limits;
  if (!media::is_manifest(ref.manifest.media_type))
    return make_error(EINVAL, "{} is a {}, not an image manifest", ref.manifest.digest.str(), ref.manifest.media_type);
  std::string text = POD_TRY(store.read_blob(ref.manifest.digest, limits.max_json_bytes));
  img.manifest = POD_TRY_CTX(parse_manifest(text), "manifest {}", ref.manifest.digest.str());
  img.config_json = POD_TRY(store.read_blob(img.manifest.config.digest, limits.max_json_bytes));
  img.config = POD_TRY_CTX(parse_config(img.config_json), "config {}", img.manifest.config.digest.str());
  return img;
}

}  // namespace pod::cas
