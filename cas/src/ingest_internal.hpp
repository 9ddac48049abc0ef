// Shared pieces of the format readers: staging blobs, reading tars, choosing a manifest.
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "pod/cas/ingest.hpp"

namespace pod::cas::detail {

using json = nlohmann::json;

struct StagedBlob {
  Digest digest;
  std::uint64_t size = 0;
  std::array<unsigned char, 6> head{};  // first bytes, for compression magic
};

// A blob being written into staging under a temporary name; it gets its hex name only
// by commit(), after its digest (and size) are checked. Destroyed uncommitted, it
// leaves nothing behind.
class BlobWriter {
 public:
  [[nodiscard]] static Result<BlobWriter> create(FdRef staging);
  BlobWriter(BlobWriter&&) noexcept;
  BlobWriter& operator=(BlobWriter&&) = delete;
  ~BlobWriter();

  [[nodiscard]] Result<void> write(const void* data, std::size_t n);
  [[nodiscard]] std::uint64_t size() const { return size_; }
  // Checks against `expected` when given, then renames to the hex name.
  [[nodiscard]] Result<StagedBlob> commit(const Descriptor* expected = nullptr);

 private:
  BlobWriter(int staging, std::string tmp, Fd fd) : staging_(staging), tmp_(std::move(tmp)), fd_(std::move(fd)) {}
  int staging_;
  std::string tmp_;
  Fd fd_;
  Sha256 sha_;
  std::uint64_t size_ = 0;
  StagedBlob head_;
  bool done_ = false;
};

[[nodiscard]] Result<StagedBlob> stage_bytes(FdRef staging, std::string_view data);
// Copies fd to staging, checked against d.
[[nodiscard]] Result<StagedBlob> stage_copy(FdRef staging, FdRef fd, const Descriptor& d);
// Checks a blob's size and digest against its descriptor.
[[nodiscard]] Result<void> check_blob(const Descriptor& d, std::uint64_t size, const Digest& got);
// Opens staging/<hex> (hex checked first).
[[nodiscard]] Result<Fd> open_staged(FdRef staging, const Digest& d);

// libarchive reader owned.
struct ArchiveFree {
  void operator()(struct archive* a) const { archive_read_free(a); }
};
using ArchiveReader = std::unique_ptr<struct archive, ArchiveFree>;

// A tar reader (any compression) over fd from its current offset.
[[nodiscard]] Result<ArchiveReader> open_tar(FdRef fd);
[[nodiscard]] std::string archive_message(struct archive* a);
// The member's name without leading "./" and trailing "/" ("" for the root itself).
[[nodiscard]] std::string member_name(const char* raw);
// Next header; false at the end. Errors say the archive is truncated or corrupt.
[[nodiscard]] Result<bool> next_member(struct archive* a, struct archive_entry** e);
// The current member's data into memory (EFBIG past limit) or into a writer.
[[nodiscard]] Result<std::string> read_member(struct archive* a, std::uint64_t limit);
[[nodiscard]] Result<void> copy_member(struct archive* a, BlobWriter& w);
[[nodiscard]] Result<void> skip_member(struct archive* a);

// Parses a JSON object strictly; errors name `what`.
[[nodiscard]] Result<json> parse_object(std::string_view text, std::string_view what);
[[nodiscard]] Result<void> check_oci_layout(std::string_view text);

// How the layout readers reach blobs: JSON read in full (checked against d), and
// blobs made present in staging or the store (checked against d).
struct BlobSource {
  std::function<Result<std::string>(const Descriptor& d)> read_json;
  std::function<Result<void>(const Descriptor& d, std::string_view what)> ensure;
};

// From index.json's text: picks the image (ref, platform, nested indexes), then makes
// its manifest, config and layers present. Shared by the OCI directory and archive.
[[nodiscard]] Result<IngestedImage> ingest_layout(std::string_view index_text, const BlobSource& src,
                                                  const IngestOptions& opts, Format format);

// The config blob's diff_ids must match the manifest's layer count.
[[nodiscard]] Result<void> check_layer_count(const Manifest& m, std::string_view config_text);

// RFC 3339 UTC, seconds.
[[nodiscard]] std::string now_rfc3339();

Result<IngestedImage> ingest_oci_dir(FdRef dir, const IngestOptions& opts, FdRef staging);
Result<IngestedImage> ingest_oci_archive(FdRef file, const IngestOptions& opts, FdRef staging);
Result<IngestedImage> ingest_docker(FdRef file, const IngestOptions& opts, FdRef staging);
Result<IngestedImage> ingest_aci(FdRef file, const IngestOptions& opts, FdRef staging);
Result<IngestedImage> ingest_rootfs(FdRef file, const IngestOptions& opts, FdRef staging);

// Stages an OCI manifest over a staged config; returns the manifest's descriptor.
[[nodiscard]] Result<Descriptor> stage_manifest(FdRef staging, const StagedBlob& config,
                                                std::vector<Descriptor> layers);
// Stages the config and an OCI manifest over it.
[[nodiscard]] Result<Descriptor> stage_image(FdRef staging, const std::string& config_text,
                                             std::vector<Descriptor> layers);

}  // namespace pod::cas::detail
