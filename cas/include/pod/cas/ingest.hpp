// Reading an image in one of the formats users bring (OCI layout directory or tar,
// docker-archive, rkt ACI, plain rootfs tar) into a staging directory of blobs.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "pod/cas/digest.hpp"
#include "pod/cas/limits.hpp"
#include "pod/cas/oci.hpp"
#include "pod/sys/fd.hpp"

namespace pod::cas {

using sys::Fd;
using sys::FdRef;

enum class Format { automatic, oci, oci_archive, docker_archive, aci, rootfs };

// "auto", "oci", "oci-archive", "docker-archive", "aci", "rootfs" (as --format takes them).
[[nodiscard]] Result<Format> parse_format(std::string_view name);
[[nodiscard]] std::string_view format_name(Format f);

struct IngestOptions {
  Format format = Format::automatic;
  Limits limits;
  // Picks among the entries of an image index; also the architecture a rootfs tarball
  // (and an ACI without an arch label) is said to be for.
  Platform platform = Platform::host();
  // Which image of a source with several: an OCI index entry whose ref.name is this or
  // its tag part; a docker-archive RepoTags entry ("busybox" = "docker.io/library/busybox:latest").
  // Empty: the only one (several: an error listing them).
  std::string source_ref;
  Warn warn;
  // Opens a blob the store already holds (nullopt: not there). Such a blob need not be
  // copied to staging; ingest may read it (a manifest, say) through this.
  std::function<std::optional<sys::Fd>(const Digest&)> open_stored;
  // ACI: checks the manifest's app.isolators (the JSON array as text) and returns what to
  // keep of them, stored as the config label "io.pod.aci.isolators" ("": no label). The
  // caller supplies it (pod: runtime::parse_aci_isolators, which knows capabilities and
  // system calls); unset, the array is stored as it is.
  std::function<Result<std::string>(std::string_view)> aci_isolators;
};

struct IngestedImage {
  Format format;             // what was detected
  Descriptor manifest;       // an OCI or Docker schema 2 image manifest, in staging or the store
  std::string source_name;   // the name the source gives the image ("busybox:latest"), may be empty
};

// Reads the image at path (relative to dir; a directory or a file). Leaves in `staging`
// every blob the chosen manifest needs that the store lacks, as files named by their
// 64-hex digest, each verified against that digest. Blobs the formats lack (ACI and
// rootfs manifests and configs, docker-archive manifests) are made here. Made
// manifests are OCI image manifests with an OCI config media type.
//
// Detection (format automatic) reads a file twice, so a pipe needs an explicit format.
// Staging never keeps a partial file: blobs are written under ".ingest-*.tmp" names
// and renamed (read-only) once verified. On failure, verified blobs may remain.
// Nothing is written anywhere but `staging`; member names are never used as paths.
[[nodiscard]] Result<IngestedImage> ingest(sys::FdRef dir, std::string_view path, sys::FdRef staging,
                                           const IngestOptions& opts);

}  // namespace pod::cas
