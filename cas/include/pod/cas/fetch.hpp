// Fetching an image from an OCI distribution registry into the store.
#pragma once

#include <cstdint>
#include <string>

#include "pod/cas/import.hpp"
#include "pod/cas/registry.hpp"

namespace pod::cas {

struct FetchOptions {
  // The name, the ownership basis, the limits and the platform (ingest.platform).
  ImportOptions import;
  TlsOptions tls;
  std::string authfile;   // empty: the default locations
  unsigned parallel = 3;  // layers downloaded at once
};

struct FetchResult {
  ImportResult import;
  std::uint64_t blobs_downloaded = 0;
  std::uint64_t blobs_present = 0;  // needed, and already in the store
  std::uint64_t bytes_downloaded = 0;
};

// Fetches ref: the manifest (from an index, the one for import.ingest.platform), its
// config and its layers. Blobs the store holds are not downloaded. Layers download in
// parallel, each streamed at once into its staging file, its hash and its unpacker.
// A layer blob, once verified, is moved into the store's blobs/ at once, so a later
// fetch reuses it even when this one is interrupted (without a ref, gc removes it);
// trees, manifest and config become visible, ref last, only when all is verified.
// Without an explicit name, a tag gives the image the name "HOST/REPO:TAG".
[[nodiscard]] Result<FetchResult> fetch_image(Store& store, const RegistryRef& ref, const FetchOptions& opts);

}  // namespace pod::cas
