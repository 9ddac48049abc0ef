// Store upkeep: garbage collection and verification.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pod/cas/store.hpp"

namespace pod::cas {

struct GcResult {
  std::uint64_t blobs_removed = 0;
  std::uint64_t trees_removed = 0;
  std::uint64_t bytes_freed = 0;  // blob bytes
};

// Removes the blobs and trees that no image references. The store must be open with
// the exclusive lock.
[[nodiscard]] Result<GcResult> gc(Store& store);

// Re-hashes blobs and checks trees against their records; `image` empty: the whole
// store. Returns one line per problem, naming the blob or tree and what is wrong.
[[nodiscard]] Result<std::vector<std::string>> verify(const Store& store, std::string_view image);

}  // namespace pod::cas
