// Reading what an import stored: a layer tree's record, an image's manifest and config.
// Apart from import so that `pod` (run, list, inspect) links no archive code.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pod/cas/store.hpp"

namespace pod::cas {

// What tree.json records about an unpacked layer.
struct TreeRecord {
  Digest layer;
  Digest diff_id;
  std::string basis;
  std::uint64_t entries = 0;
  std::uint64_t bytes = 0;
  std::vector<std::uint32_t> uids, gids;
};
[[nodiscard]] Result<TreeRecord> read_tree_record(const Store& store, const Digest& layer);

// The manifest and config of a stored image, read and verified.
struct StoredImage {
  Ref ref;
  Manifest manifest;
  ImageConfig config;
  std::string config_json;
};
[[nodiscard]] Result<StoredImage> load_image(const Store& store, const Ref& ref);

}  // namespace pod::cas
