#include "pod/cas/export.hpp"

#include <archive.h>
#include <archive_entry.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "pod/cas/import.hpp"
#include "pod/sys/fs.hpp"

namespace pod::cas {

using json = nlohmann::json;
using sys::make_error;

Result<ExportFormat> parse_export_format(std::string_view name) {
  if (name == "oci-archive") return ExportFormat::oci_archive;
  if (name == "docker-archive") return ExportFormat::docker_archive;
  return make_error(EINVAL, "unknown export format '{}' (oci-archive or docker-archive)", name);
}

namespace {

using ArchivePtr = std::unique_ptr<struct archive, decltype(&archive_write_free)>;
using ReaderPtr = std::unique_ptr<struct archive, decltype(&archive_read_free)>;

class TarWriter {
 public:
  explicit TarWriter(int fd) : a_(archive_write_new(), &archive_write_free) {
    archive_write_set_format_pax_restricted(a_.get());
    archive_write_set_bytes_in_last_block(a_.get(), 1);
    ok_ = archive_write_open_fd(a_.get(), fd) == ARCHIVE_OK;
  }

  Result<void> add(std::string_view name, std::string_view data) {
    POD_TRY(header(name, data.size()));
    return write(data.data(), data.size(), name);
  }

  // An entry whose content comes from `fill`, which must write exactly `size` bytes.
  Result<void> header(std::string_view name, std::uint64_t size) {
    if (!ok_) return make_error(EIO, "cannot start the archive: {}", err());
    auto* e = archive_entry_new();
    std::string n(name);
    archive_entry_set_pathname(e, n.c_str());
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, static_cast<la_int64_t>(size));
    int r = archive_write_header(a_.get(), e);
    archive_entry_free(e);
    if (r != ARCHIVE_OK) return make_error(EIO, "writing '{}': {}", name, err());
    return {};
  }

  Result<void> write(const void* data, std::size_t n, std::string_view name) {
    if (n && archive_write_data(a_.get(), data, n) != static_cast<la_ssize_t>(n))
      return make_error(EIO, "writing '{}': {}", name, err());
    return {};
  }

  Result<void> close() {
    if (archive_write_close(a_.get()) != ARCHIVE_OK) return make_error(EIO, "finishing the archive: {}", err());
    return {};
  }

 private:
  std::string err() { return archive_error_string(a_.get()) ?: "unknown error"; }
  ArchivePtr a_;
  bool ok_ = false;
};

Result<void> copy_blob(const Store& store, TarWriter& w, const Digest& d, std::string_view name) {
  Fd fd = POD_TRY(store.open_blob(d));
  struct stat st = POD_TRY(sys::stat_fd(fd));
  POD_TRY(w.header(name, static_cast<std::uint64_t>(st.st_size)));
  std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0) return sys::sys_error("reading blob {}", d.str());
    if (n == 0) return {};
    POD_TRY(w.write(buf.data(), static_cast<std::size_t>(n), name));
  }
}

// Streams the decompressed bytes of a layer blob to `sink`; returns the total.
template <class Sink>
Result<std::uint64_t> decompress_blob(const Store& store, const Digest& d, Sink&& sink) {
  Fd fd = POD_TRY(store.open_blob(d));
  ReaderPtr a(archive_read_new(), &archive_read_free);
  enable_image_filters(a.get());
  archive_read_support_format_raw(a.get());
  if (archive_read_open_fd(a.get(), fd.get(), 1 << 20) != ARCHIVE_OK)
    return make_error(EIO, "layer {}: {}", d.str(), archive_error_string(a.get()) ?: "cannot read");
  struct archive_entry* e;
  if (archive_read_next_header(a.get(), &e) != ARCHIVE_OK)
    return make_error(EIO, "layer {}: {}", d.str(), archive_error_string(a.get()) ?: "cannot read");
  std::vector<char> buf(1 << 20);
  std::uint64_t total = 0;
  for (;;) {
    la_ssize_t n = archive_read_data(a.get(), buf.data(), buf.size());
    if (n < 0) return make_error(EIO, "layer {}: {}", d.str(), archive_error_string(a.get()) ?: "cannot read");
    if (n == 0) return total;
    POD_TRY(sink(buf.data(), static_cast<std::size_t>(n)));
    total += static_cast<std::uint64_t>(n);
  }
}

Result<void> write_oci(const Store& store, const StoredImage& img, TarWriter& w) {
  POD_TRY(w.add("oci-layout", R"({"imageLayoutVersion":"1.0.0"})"));
  Descriptor d = img.ref.manifest;
  d.annotations.clear();
  if (img.ref.name) d.annotations[std::string(kRefNameAnnotation)] = img.ref.name->str();
  json index = {{"schemaVersion", 2}, {"mediaType", media::kOciIndex}, {"manifests", json::array()}};
  index["manifests"].push_back(json::parse(descriptor_json(d)));
  POD_TRY(w.add("index.json", index.dump()));
  std::vector<Digest> blobs{img.ref.manifest.digest, img.manifest.config.digest};
  for (auto& l : img.manifest.layers)
    if (std::find(blobs.begin(), blobs.end(), l.digest) == blobs.end()) blobs.push_back(l.digest);
  for (auto& b : blobs) POD_TRY(copy_blob(store, w, b, "blobs/sha256/" + b.hex));
  return {};
}

Result<void> write_docker(const Store& store, const StoredImage& img, TarWriter& w) {
  json entry = {{"Config", img.manifest.config.digest.hex + ".json"}, {"RepoTags", json::array()}, {"Layers", json::array()}};
  if (img.ref.name) entry["RepoTags"].push_back(img.ref.name->str());
  POD_TRY(w.add(img.manifest.config.digest.hex + ".json", img.config_json));
  for (std::size_t i = 0; i < img.manifest.layers.size(); ++i) {
    const Digest& blob = img.manifest.layers[i].digest;
    std::string name = img.config.diff_ids.at(i).hex + "/layer.tar";
    // The size must be in the header before the data: count first, then copy.
    std::uint64_t size = POD_TRY(decompress_blob(store, blob, [](const char*, std::size_t) -> Result<void> { return {}; }));
    POD_TRY(w.header(name, size));
    POD_TRY(decompress_blob(store, blob, [&](const char* p, std::size_t n) { return w.write(p, n, name); }));
    entry["Layers"].push_back(name);
  }
  json manifest = json::array({entry});
  POD_TRY(w.add("manifest.json", manifest.dump()));
  return {};
}

}  // namespace

Result<void> export_image(const Store& store, const Ref& ref, sys::FdRef dir, std::string_view name,
                          ExportFormat format) {
  StoredImage img = POD_TRY(load_image(store, ref));
  std::string tmp = fmt::format(".{}.tmp-{}", name, sys::random_hex(6));
  Fd out = POD_TRY(sys::open_at(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0644));
  auto result = [&]() -> Result<void> {
    TarWriter w(out.get());
    if (format == ExportFormat::oci_archive)
      POD_TRY(write_oci(store, img, w));
    else
      POD_TRY(write_docker(store, img, w));
    POD_TRY(w.close());
    POD_TRY(sys::fsync_fd(out));
    std::string final_name(name);
    if (::renameat(dir.get(), tmp.c_str(), dir.get(), final_name.c_str()) != 0)
      return sys::sys_error("renaming to '{}'", name);
    return {};
  }();
  if (!result) {
    ::unlinkat(dir.get(), tmp.c_str(), 0);
    return sys::Unexpected(std::move(result.error()).context("exporting to '{}'", name));
  }
  return {};
}

}  // namespace pod::cas
