// Bounds on what an image may make us read or write; each can be changed by flag.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace pod::cas {

struct Limits {
  std::uint64_t max_layer_bytes = 32ull << 30;  // unpacked bytes of one layer
  std::uint64_t max_entries = 1'000'000;        // archive entries of one layer
  std::uint32_t max_depth = 128;                // path components of one entry
  std::uint64_t max_json_bytes = 4u << 20;      // manifest, index, config
  std::uint64_t max_members = 100'000;          // members of an image archive
  std::uint32_t max_index_depth = 8;            // nested image indexes
};

// Non-fatal notes for the user (a skipped device node, say); cmd prints them.
using Warn = std::function<void(const std::string&)>;

}  // namespace pod::cas

struct archive;

namespace pod::cas {

// Enables the compressions images use (gzip, bzip2, xz, zstd; none is always on) on a
// libarchive reader, and no others: libarchive runs outside programs (lrzip, lzop, ...)
// for formats it lacks, which an image must not be able to start.
void enable_image_filters(struct archive* a);

}  // namespace pod::cas
