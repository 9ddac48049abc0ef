// Which format an input is, by its content, and the reader for it.
#include <sys/stat.h>

#include "ingest_internal.hpp"
#include "pod/sys/fs.hpp"

namespace pod::cas {

using sys::make_error;

Result<Format> parse_format(std::string_view name) {
  if (name == "auto" || name == "automatic") return Format::automatic;
  if (name == "oci") return Format::oci;
  if (name == "oci-archive") return Format::oci_archive;
  if (name == "docker-archive") return Format::docker_archive;
  if (name == "aci") return Format::aci;
  if (name == "rootfs") return Format::rootfs;
  return make_error(EINVAL, "unknown image format '{}' (auto, oci, oci-archive, docker-archive, aci, rootfs)", name);
}

std::string_view format_name(Format f) {
  switch (f) {
    case Format::automatic: return "auto";
    case Format::oci: return "oci";
    case Format::oci_archive: return "oci-archive";
    case Format::docker_archive: return "docker-archive";
    case Format::aci: return "aci";
    case Format::rootfs: return "rootfs";
  }
  return "unknown";
}

namespace {

// One pass over the member names (data skipped): what kind of archive this is. It
// also proves the file is a readable tar before anything is staged.
Result<Format> survey(FdRef fd, std::string_view path) {
  auto opened = detail::open_tar(fd);
  if (!opened && opened.error().message.starts_with("truncated")) return sys::Unexpected(std::move(opened).error());
  if (!opened)
    return make_error(EINVAL, "'{}' is not an image: neither an OCI layout directory nor a tar archive ({})", path,
                      opened.error().message);
  detail::ArchiveReader a = std::move(*opened);
  bool layout = false, index = false, docker = false, aci_manifest = false, rootfs = false;
  std::uint64_t n = 0;
  struct archive_entry* e = nullptr;
  for (;; ++n) {
    int r = archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      if (n == 0)
        return make_error(EINVAL, "'{}' is not an image: neither an OCI layout directory nor a tar archive ({})",
                          path, detail::archive_message(a.get()));
      return make_error(EINVAL, "truncated or corrupt archive: {}", detail::archive_message(a.get()));
    }
    std::string name = detail::member_name(archive_entry_pathname(e));
    if (name == "oci-layout") layout = true;
    else if (name == "index.json") index = true;
    else if (name == "manifest.json") docker = true;
    else if (name == "manifest") aci_manifest = true;
    else if (name == "rootfs" || name.starts_with("rootfs/")) rootfs = true;
    POD_TRY(detail::skip_member(a.get()));
  }
  if (n == 0) return make_error(EINVAL, "'{}' is an empty archive", path);
  // Docker 25+ and skopeo write both an OCI layout and manifest.json: OCI says more.
  if (layout && index) return Format::oci_archive;
  if (docker) return Format::docker_archive;
  if (aci_manifest && rootfs) return Format::aci;
  return Format::rootfs;
}

}  // namespace

Result<IngestedImage> ingest(FdRef dir, std::string_view path, FdRef staging, const IngestOptions& opts) {
  Fd fd = POD_TRY(sys::open_at(dir, path, O_RDONLY));
  struct stat st = POD_TRY(sys::stat_fd(fd));
  Format f = opts.format;
  if (S_ISDIR(st.st_mode)) {
    if (f != Format::automatic && f != Format::oci)
      return make_error(EINVAL, "'{}' is a directory; the {} format is a file", path, format_name(f));
    auto r = detail::ingest_oci_dir(fd, opts, staging);
    if (!r) return sys::Unexpected(std::move(r).error().context("oci '{}'", path));
    return r;
  }
  if (f == Format::oci)
    return make_error(ENOTDIR, "'{}' is not a directory (an OCI image layout is one; a tar of it is oci-archive)",
                      path);
  // A rootfs reader takes any byte stream, so it needs the survey's proof of a tar too.
  if (f == Format::automatic || (f == Format::rootfs && ::lseek(fd.get(), 0, SEEK_SET) == 0)) {
    if (::lseek(fd.get(), 0, SEEK_SET) != 0)
      return make_error(ESPIPE, "'{}' cannot be read twice (a pipe?); give its format", path);
    Format found = POD_TRY(survey(fd, path));
    if (f == Format::automatic) f = found;
    if (::lseek(fd.get(), 0, SEEK_SET) != 0) return sys::sys_error("seeking '{}'", path);
  }
  Result<IngestedImage> r = make_error(EINVAL, "no reader for format {}", format_name(f));
  switch (f) {
    case Format::oci_archive: r = detail::ingest_oci_archive(fd, opts, staging); break;
    case Format::docker_archive: r = detail::ingest_docker(fd, opts, staging); break;
    case Format::aci: r = detail::ingest_aci(fd, opts, staging); break;
    case Format::rootfs: r = detail::ingest_rootfs(fd, opts, staging); break;
    case Format::automatic:
    case Format::oci: break;
  }
  if (!r) return sys::Unexpected(std::move(r).error().context("{} '{}'", format_name(f), path));
  return r;
}

}  // namespace pod::cas
