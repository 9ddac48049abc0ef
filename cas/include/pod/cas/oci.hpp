// The OCI image model: descriptors, manifests, indexes and configs, parsed strictly.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pod/cas/digest.hpp"

namespace pod::cas {

namespace media {
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kOciLayer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kOciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kOciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view kOciLayerNondist = "application/vnd.oci.image.layer.nondistributable.v1.tar";
inline constexpr std::string_view kOciLayerNondistGzip = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
inline constexpr std::string_view kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerList = "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kDockerLayer = "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr std::string_view kDockerLayerForeign = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

[[nodiscard]] bool is_index(std::string_view m);
[[nodiscard]] bool is_manifest(std::string_view m);
[[nodiscard]] bool is_config(std::string_view m);
[[nodiscard]] bool is_layer(std::string_view m);
}  // namespace media

inline constexpr std::string_view kRefNameAnnotation = "org.opencontainers.image.ref.name";

struct Platform {
  std::string os;
  std::string architecture;
  std::string variant;
  [[nodiscard]] std::string str() const;
  // "linux/amd64" or "linux/arm64/v8".
  [[nodiscard]] static Result<Platform> parse(std::string_view text);
  // This machine's, in OCI's names (amd64, arm64, ...).
  [[nodiscard]] static Platform host();
  [[nodiscard]] bool matches(const Platform& wanted) const;
};

struct Descriptor {
  std::string media_type;
  Digest digest;
  std::uint64_t size = 0;
  std::map<std::string, std::string> annotations;
  std::optional<Platform> platform;
};

struct Manifest {
  std::string media_type;
  Descriptor config;
  std::vector<Descriptor> layers;
};

struct Index {
  std::vector<Descriptor> manifests;
};

// The parts of an image config pod uses; the whole JSON is kept in the blob.
struct ImageConfig {
  std::string created;  // RFC 3339, may be empty
  std::string os;
  std::string architecture;
  std::vector<Digest> diff_ids;
};

// Each parser refuses malformed JSON, missing or mistyped fields, bad digests and
// unknown media types with an error that names the field.
[[nodiscard]] Result<Descriptor> parse_descriptor(std::string_view json_text);
[[nodiscard]] Result<Manifest> parse_manifest(std::string_view json_text);
[[nodiscard]] Result<Index> parse_index(std::string_view json_text);
[[nodiscard]] Result<ImageConfig> parse_config(std::string_view json_text);

[[nodiscard]] std::string descriptor_json(const Descriptor& d);
// A manifest's canonical JSON text (the bytes that are hashed).
[[nodiscard]] std::string manifest_json(const Manifest& m);

// NAME[:TAG] as image references are written: lowercase path components of
// [a-z0-9] joined by '.', '_', '__' or '-', separated by '/'; TAG [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.
struct ImageName {
  std::string name;
  std::string tag = "latest";
  [[nodiscard]] std::string str() const { return name + ":" + tag; }
  [[nodiscard]] static Result<ImageName> parse(std::string_view text);
};

}  // namespace pod::cas
