// OCI image layouts: a directory, or a tar of one (oci-archive), and choosing the image
// an index names.
#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <vector>

#include "ingest_internal.hpp"
#include "pod/sys/fs.hpp"

namespace pod::cas::detail {

using sys::make_error;

namespace {

std::string ref_of(const Descriptor& d) {
  auto it = d.annotations.find(std::string(kRefNameAnnotation));
  return it == d.annotations.end() ? std::string() : it->second;
}

std::string list_refs(const std::vector<Descriptor>& all) {
  std::string out;
  for (auto& d : all) {
    std::string r = ref_of(d);
    if (r.empty()) r = "(unnamed " + d.digest.short_str() + ")";
    out += (out.empty() ? "" : ", ") + r;
  }
  return out.empty() ? "none" : out;
}

// The tag of "name:tag" ("" without one).
std::string_view tag_of(std::string_view ref) {
  auto slash = ref.rfind('/');
  auto colon = ref.rfind(':');
  if (colon == std::string_view::npos || (slash != std::string_view::npos && colon < slash)) return {};
  return ref.substr(colon + 1);
}

Result<Descriptor> pick_platform(const std::vector<Descriptor>& c, const Platform& want, std::string_view what) {
  std::string seen;
  for (auto& d : c) {
    if (!d.platform) continue;
    if (d.platform->matches(want)) return d;
    seen += (seen.empty() ? "" : ", ") + d.platform->str();
  }
  return make_error(EINVAL, "{}: no image for platform {} (available: {})", what, want.str(),
                    seen.empty() ? "none" : seen);
}

// A descriptor that names no platform stands for any when it is the only one.
Result<Descriptor> pick(const std::vector<Descriptor>& c, const Platform& want, std::string_view what) {
  if (c.size() == 1 && !c.front().platform) return c.front();
  return pick_platform(c, want, what);
}

}  // namespace

Result<IngestedImage> ingest_layout(std::string_view index_text, const BlobSource& src, const IngestOptions& opts,
                                    Format format) {
  if (index_text.size() > opts.limits.max_json_bytes)
    return make_error(EFBIG, "index.json is larger than the limit of {} bytes", opts.limits.max_json_bytes);
  Index top = POD_TRY_CTX(parse_index(index_text), "index.json");
  if (top.manifests.empty()) return make_error(EINVAL, "index.json lists no images");

  std::vector<Descriptor> cands;
  if (!opts.source_ref.empty()) {
    std::string_view tag = tag_of(opts.source_ref);
    for (auto& d : top.manifests) {
      std::string r = ref_of(d);
      if (!r.empty() && (r == opts.source_ref || (!tag.empty() && r == tag))) cands.push_back(d);
    }
    if (cands.empty())
      return make_error(EINVAL, "index.json has no image named '{}' (available: {})", opts.source_ref,
                        list_refs(top.manifests));
  } else {
    cands = top.manifests;
  }
  // Several entries are one image for several platforms only when they share a name.
  bool one_name = std::all_of(cands.begin(), cands.end(), [&](auto& d) { return ref_of(d) == ref_of(cands[0]); });
  if (cands.size() > 1 && !one_name)
    return make_error(EINVAL, "index.json lists several images; choose one by name (available: {})",
                      list_refs(top.manifests));
  Descriptor cur = POD_TRY(pick(cands, opts.platform, "index.json"));
  std::string source_name = ref_of(cur);

  std::vector<Digest> path;
  while (media::is_index(cur.media_type)) {
    if (std::find(path.begin(), path.end(), cur.digest) != path.end())
      return make_error(EINVAL, "index cycle: index {} contains itself", cur.digest.str());
    path.push_back(cur.digest);
    if (path.size() > opts.limits.max_index_depth)
      return make_error(EINVAL, "image indexes nested deeper than {} levels", opts.limits.max_index_depth);
    std::string text = POD_TRY_CTX(src.read_json(cur), "index {}", cur.digest.str());
    Index idx = POD_TRY_CTX(parse_index(text), "index {}", cur.digest.str());
    if (idx.manifests.empty()) return make_error(EINVAL, "index {} lists no images", cur.digest.str());
    cur = POD_TRY(pick(idx.manifests, opts.platform, fmt::format("index {}", cur.digest.str())));
  }
  if (!media::is_manifest(cur.media_type))
    return make_error(EINVAL, "descriptor {}: unknown media type '{}'", cur.digest.str(), cur.media_type);

  std::string text = POD_TRY_CTX(src.read_json(cur), "manifest {}", cur.digest.str());
  Manifest m = POD_TRY_CTX(parse_manifest(text), "manifest {}", cur.digest.str());
  std::string cfg = POD_TRY_CTX(src.read_json(m.config), "config {}", m.config.digest.str());
  POD_TRY_CTX(check_layer_count(m, cfg), "manifest {}", cur.digest.str());
  POD_TRY(src.ensure(cur, "manifest"));
  POD_TRY(src.ensure(m.config, "config"));
  for (std::size_t i = 0; i < m.layers.size(); ++i) POD_TRY(src.ensure(m.layers[i], fmt::format("layer {}", i)));
  return IngestedImage{format, cur, source_name};
}

namespace {

// Opens a regular file of the layout; O_NONBLOCK so that a FIFO planted there cannot hang us.
Result<Fd> open_layout_file(FdRef dir, std::string_view path) {
  Fd fd = POD_TRY(sys::open_in(dir, path, O_RDONLY | O_NONBLOCK, sys::Resolve::beneath_no_symlinks));
  struct stat st = POD_TRY(sys::stat_fd(fd));
  if (!S_ISREG(st.st_mode)) return make_error(EINVAL, "'{}' is not a regular file", path);
  return fd;
}

Result<Fd> open_layout_blob(FdRef dir, const Digest& d) {
  if (!Digest::valid_hex(d.hex)) return make_error(EINVAL, "'{}' is not a digest", d.hex);
  return open_layout_file(dir, "blobs/sha256/" + d.hex);
}

Result<std::string> read_checked(FdRef fd, const Descriptor& d, std::uint64_t limit) {
  if (d.size > limit)
    return make_error(EFBIG, "blob {} is {} bytes, more than the limit of {} for JSON", d.digest.str(), d.size, limit);
  std::string text = POD_TRY(sys::read_fd(fd, limit));
  POD_TRY(check_blob(d, text.size(), sha256_of(text)));
  return text;
}

std::optional<Fd> stored(const IngestOptions& opts, const Digest& d) {
  if (!opts.open_stored) return std::nullopt;
  return opts.open_stored(d);
}

}  // namespace

Result<IngestedImage> ingest_oci_dir(FdRef dir, const IngestOptions& opts, FdRef staging) {
  const std::uint64_t limit = opts.limits.max_json_bytes;
  {
    Fd fd = POD_TRY_CTX(open_layout_file(dir, "oci-layout"), "not an OCI image layout");
    std::string text = POD_TRY_CTX(sys::read_fd(fd, limit), "oci-layout");
    POD_TRY(check_oci_layout(text));
  }
  Fd ifd = POD_TRY_CTX(open_layout_file(dir, "index.json"), "OCI image layout");
  std::string index = POD_TRY_CTX(sys::read_fd(ifd, limit), "index.json");

  BlobSource src;
  src.read_json = [&](const Descriptor& d) -> Result<std::string> {
    if (auto fd = stored(opts, d.digest)) return read_checked(*fd, d, limit);
    Fd fd = POD_TRY_CTX(open_layout_blob(dir, d.digest), "blob {}", d.digest.str());
    return read_checked(fd, d, limit);
  };
  src.ensure = [&](const Descriptor& d, std::string_view what) -> Result<void> {
    if (stored(opts, d.digest)) return {};
    Fd fd = POD_TRY_CTX(open_layout_blob(dir, d.digest), "{} {}", what, d.digest.str());
    POD_TRY_CTX(stage_copy(staging, fd, d), "{}", what);
    return {};
  };
  return ingest_layout(index, src, opts, Format::oci);
}

Result<IngestedImage> ingest_oci_archive(FdRef file, const IngestOptions& opts, FdRef staging) {
  const std::uint64_t limit = opts.limits.max_json_bytes;
  ArchiveReader a = POD_TRY(open_tar(file));
  std::optional<std::string> layout, index;
  std::map<std::string, std::uint64_t> staged;  // hex → size, staged by this call
  std::uint64_t members = 0;
  struct archive_entry* e = nullptr;
  while (POD_TRY(next_member(a.get(), &e))) {
    if (++members > opts.limits.max_members)
      return make_error(EINVAL, "the archive has too many members (more than {})", opts.limits.max_members);
    std::string name = member_name(archive_entry_pathname(e));
    bool regular = archive_entry_filetype(e) == AE_IFREG && !archive_entry_hardlink(e);
    if (name == "oci-layout" || name == "index.json") {
      if (!regular) return make_error(EINVAL, "member '{}' is not a regular file", name);
      auto& slot = name == "oci-layout" ? layout : index;
      slot = POD_TRY_CTX(read_member(a.get(), limit), "member '{}'", name);
      continue;
    }
    std::string_view hex = name;
    if (!regular || !hex.starts_with("blobs/sha256/") || !Digest::valid_hex(hex.substr(13))) {
      POD_TRY_CTX(skip_member(a.get()), "member '{}'", name);
      continue;
    }
    Descriptor d{"", Digest{std::string(hex.substr(13))}, static_cast<std::uint64_t>(archive_entry_size(e)), {}, {}};
    if (stored(opts, d.digest)) {
      POD_TRY_CTX(skip_member(a.get()), "member '{}'", name);
      continue;
    }
    BlobWriter w = POD_TRY(BlobWriter::create(staging));
    POD_TRY_CTX(copy_member(a.get(), w), "member '{}'", name);
    StagedBlob b = POD_TRY_CTX(w.commit(&d), "member '{}'", name);
    staged[b.digest.hex] = b.size;
  }
  if (!layout) return make_error(EINVAL, "not an OCI archive: no oci-layout member");
  POD_TRY(check_oci_layout(*layout));
  if (!index) return make_error(EINVAL, "not an OCI archive: no index.json member");

  std::set<std::string> used;
  BlobSource src;
  src.read_json = [&](const Descriptor& d) -> Result<std::string> {
    if (auto fd = stored(opts, d.digest)) return read_checked(*fd, d, limit);
    if (!staged.contains(d.digest.hex)) return make_error(EINVAL, "blob {} is not in the archive", d.digest.str());
    Fd fd = POD_TRY(open_staged(staging, d.digest));
    return read_checked(fd, d, limit);
  };
  src.ensure = [&](const Descriptor& d, std::string_view what) -> Result<void> {
    auto it = staged.find(d.digest.hex);
    if (it != staged.end()) {
      used.insert(d.digest.hex);
      return check_blob(d, it->second, d.digest);
    }
    if (stored(opts, d.digest)) return {};
    return make_error(EINVAL, "{} {} is not in the archive", what, d.digest.str());
  };
  IngestedImage img = POD_TRY(ingest_layout(*index, src, opts, Format::oci_archive));
  // Other images' blobs (other platforms, other names) stay out of the store.
  for (auto& [hex, size] : staged)
    if (!used.contains(hex)) ::unlinkat(staging.get(), hex.c_str(), 0);
  return img;
}

}  // namespace pod::cas::detail
