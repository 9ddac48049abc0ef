// Importing an image into the store: ingest, verify, unpack, then make it visible.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "pod/cas/ingest.hpp"
#include "pod/cas/stored_image.hpp"
#include "pod/cas/store.hpp"
#include "pod/cas/unpack.hpp"

namespace pod::cas {

// How the store's files are owned: decided by the caller (cmd), recorded per tree.
struct OwnershipBasis {
  Ownership ownership = Ownership::exact;
  OverlayXattrs overlay_xattrs = OverlayXattrs::trusted;
  std::string description;  // "host", or the user namespace maps, for tree.json
};

struct ImportOptions {
  IngestOptions ingest;
  std::optional<ImageName> name;  // else the name the archive gives, else unnamed
  OwnershipBasis basis;
  Warn warn;
};

struct ImportResult {
  Descriptor manifest;
  std::optional<ImageName> name;
  Format format = Format::automatic;
  bool changed = false;  // false: the store already held exactly this
};

[[nodiscard]] Result<ImportResult> import_image(Store& store, sys::FdRef dir, std::string_view path,
                                                const ImportOptions& opts);

// A staging area in the store's tmp/: blobs/ (files named by hex digest, verified) and
// trees/ (unpacked layers), removed with everything in it when destroyed.
class StagingArea {
 public:
  [[nodiscard]] static Result<StagingArea> create(const Store& store);
  StagingArea(StagingArea&&) noexcept;
  StagingArea& operator=(StagingArea&&) = delete;
  ~StagingArea();
  [[nodiscard]] sys::FdRef blobs() const { return blobs_; }
  [[nodiscard]] sys::FdRef trees() const { return trees_; }

 private:
  StagingArea(sys::FdRef tmp, std::string name) : tmp_(tmp), name_(std::move(name)) {}
  sys::FdRef tmp_;
  std::string name_;
  Fd blobs_, trees_;
};

// Unpacks one layer read from `stream` (a file or a pipe: a fetch unpacks while it
// downloads) into staging trees/<hex>/, checking its diff_id. finish_import then skips it.
[[nodiscard]] Result<void> unpack_to_staging(const StagingArea& staging, sys::FdRef stream, const Descriptor& layer,
                                             const Digest& diff_id, const ImportOptions& opts,
                                             std::string progress_label);

// The second half of an import (or fetch): reads and checks the manifest and config
// (from staging or the store), unpacks the layers neither staging nor the store has,
// makes everything durable, moves it into the store, and writes the ref last.
[[nodiscard]] Result<ImportResult> finish_import(Store& store, const StagingArea& staging,
                                                 const IngestedImage& image, const ImportOptions& opts);

}  // namespace pod::cas
