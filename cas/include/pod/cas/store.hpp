// The image store: an OCI image layout of verified blobs, plus unpacked layer trees.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pod/cas/digest.hpp"
#include "pod/cas/limits.hpp"
#include "pod/cas/oci.hpp"
#include "pod/sys/fd.hpp"
#include "pod/sys/lock.hpp"

namespace pod::cas {

using sys::Fd;

// One entry of the store's index.json: a manifest, with the name it was given (if any).
struct Ref {
  std::optional<ImageName> name;
  Descriptor manifest;
};

class Store {
 public:
  // Opens (creating) the store at `path` and takes the store lock in `mode`: shared for
  // import and run, exclusive for gc. When no other command holds the lock, debris left
  // in tmp/ by a killed command is removed first.
  [[nodiscard]] static Result<Store> open(std::string_view path, sys::FileLock::Mode mode);

  [[nodiscard]] sys::FdRef dir() const { return dir_; }
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] sys::FdRef tmp_dir() const { return tmp_; }

  // Blobs
  [[nodiscard]] bool has_blob(const Digest& d) const;
  [[nodiscard]] Result<Fd> open_blob(const Digest& d) const;
  [[nodiscard]] Result<std::string> read_blob(const Digest& d, std::uint64_t limit) const;
  // Moves the verified file `name` of `from` to blobs/sha256/<hex>, read-only; an
  // existing blob wins (it has the same content). Does not fsync: see commit_sync.
  [[nodiscard]] Result<void> adopt_blob(sys::FdRef from, std::string_view name, const Digest& d);
  [[nodiscard]] Result<std::vector<Digest>> list_blobs() const;
  [[nodiscard]] Result<void> remove_blob(const Digest& d);

  // Trees: trees/<layer-digest-hex>/ holds root/ (the files), files.jsonl (the record
  // verify checks) and tree.json (diff_id, ownership basis, census).
  [[nodiscard]] bool has_tree(const Digest& layer) const;
  [[nodiscard]] Result<Fd> open_tree(const Digest& layer) const;
  [[nodiscard]] Result<void> adopt_tree(sys::FdRef from, std::string_view name, const Digest& layer);
  [[nodiscard]] Result<std::vector<Digest>> list_trees() const;
  [[nodiscard]] Result<void> remove_tree(const Digest& layer);

  // Flushes everything written to the store's filesystem (one syncfs, not one fsync a file).
  [[nodiscard]] Result<void> sync_all();

  // Refs (index.json). Updates hold refs.lock, so concurrent imports do not lose each other's.
  [[nodiscard]] Result<std::vector<Ref>> refs() const;
  // Points `name` at `manifest` (nullopt: an unnamed entry). Returns false when the
  // index already said exactly that and nothing was written.
  [[nodiscard]] Result<bool> set_ref(const std::optional<ImageName>& name, const Descriptor& manifest);
  // Removes the entries that `image` names (a name, a digest, a digest prefix); returns them.
  [[nodiscard]] Result<std::vector<Ref>> remove_refs(std::string_view image);

  // An image by name[:tag], full digest or unique digest prefix (of at least 4 hex digits).
  [[nodiscard]] Result<Ref> resolve(std::string_view image) const;

 private:
  Store() = default;
  std::string path_;
  Fd dir_, blobs_, trees_, tmp_;
  std::optional<sys::FileLock> lock_;
};

// The store path: --root, else $POD_ROOT, else /var/lib/pod for root and
// $XDG_DATA_HOME/pod (~/.local/share/pod) for users.
[[nodiscard]] Result<std::string> default_store_path();

}  // namespace pod::cas
