#include "pod/cas/maintain.hpp"

#include <algorithm>
#include <set>

#include "pod/cas/import.hpp"
#include "pod/cas/unpack.hpp"
#include "pod/sys/fs.hpp"

namespace pod::cas {

using sys::make_error;

namespace {

struct Reachable {
  std::set<Digest> blobs;
  std::set<Digest> layers;
};

// Everything the refs reach. An image that cannot be read keeps all it names so far:
// gc must never delete on a misread.
Result<Reachable> reachable(const Store& store, const std::vector<Ref>& refs) {
  Reachable r;
  for (auto& ref : refs) {
    r.blobs.insert(ref.manifest.digest);
    StoredImage img = POD_TRY_CTX(load_image(store, ref), "image {}", ref.manifest.digest.str());
    r.blobs.insert(img.manifest.config.digest);
    for (auto& l : img.manifest.layers) {
      r.blobs.insert(l.digest);
      r.layers.insert(l.digest);
    }
  }
  return r;
}

Result<std::string> hash_blob(const Store& store, const Digest& d) {
  Fd fd = POD_TRY(store.open_blob(d));
  Sha256 h;
  std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys::sys_error("reading blob {}", d.str());
    }
    if (n == 0) break;
    h.update(buf.data(), static_cast<std::size_t>(n));
  }
  return h.finish().hex;
}

}  // namespace

Result<GcResult> gc(Store& store) {
  Reachable keep = POD_TRY(reachable(store, POD_TRY(store.refs())));
  GcResult out;
  for (auto& d : POD_TRY(store.list_trees())) {
    if (keep.layers.count(d)) continue;
    POD_TRY(store.remove_tree(d));
    ++out.trees_removed;
  }
  for (auto& d : POD_TRY(store.list_blobs())) {
    if (keep.blobs.count(d)) continue;
    if (auto fd = store.open_blob(d)) {
      if (auto st = sys::stat_fd(*fd)) out.bytes_freed += static_cast<std::uint64_t>(st->st_size);
    }
    POD_TRY(store.remove_blob(d));
    ++out.blobs_removed;
  }
  return out;
}

Result<std::vector<std::string>> verify(const Store& store, std::string_view image) {
  std::vector<std::string> problems;
  std::vector<Digest> blobs, trees;
  if (image.empty()) {
    blobs = POD_TRY(store.list_blobs());
    trees = POD_TRY(store.list_trees());
  } else {
    Ref ref = POD_TRY(store.resolve(image));
    blobs.push_back(ref.manifest.digest);
    auto img = load_image(store, ref);
    if (!img) {
      problems.push_back(img.error().what());
      return problems;
    }
    blobs.push_back(img->manifest.config.digest);
    for (auto& l : img->manifest.layers) {
      blobs.push_back(l.digest);
      trees.push_back(l.digest);
    }
  }
  for (auto& d : blobs) {
    auto got = hash_blob(store, d);
    if (!got)
      problems.push_back(fmt::format("blob {}: {}", d.str(), got.error().what()));
    else if (*got != d.hex)
      problems.push_back(fmt::format("blob {}: content changed (hashes to sha256:{})", d.str(), *got));
  }
  for (auto& d : trees) {
    auto tree = store.open_tree(d);
    if (!tree) {
      problems.push_back(fmt::format("tree {}: {}", d.str(), tree.error().what()));
      continue;
    }
    auto root = sys::open_at(*tree, "root", O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    auto list = sys::open_at(*tree, "files.jsonl", O_RDONLY | O_NOFOLLOW);
    if (!root || !list) {
      problems.push_back(fmt::format("tree {}: root/ or files.jsonl is missing", d.str()));
      continue;
    }
    auto diffs = verify_tree(*root, *list);
    if (!diffs) {
      problems.push_back(fmt::format("tree {}: {}", d.str(), diffs.error().what()));
      continue;
    }
    for (auto& line : *diffs) problems.push_back(fmt::format("tree {}: {}", d.str(), line));
  }
  return problems;
}

}  // namespace pod::cas
