// A plain rootfs tarball: the tar itself is the one layer. gzip, zstd and uncompressed
// tars are kept byte for byte; other compressions (bzip2, xz, ...) have no OCI media
// type and are stored decompressed. One pass: the file's bytes are copied to staging
// as libarchive reads them, and the decompressed stream is hashed for the diff_id.
#include "ingest_internal.hpp"

namespace pod::cas::detail {

using sys::make_error;

namespace {

struct Tee {
  int fd;
  BlobWriter* copy;
  std::array<char, 1 << 16> buf{};
  std::optional<sys::Error> error;
};

la_ssize_t tee_read(struct archive* a, void* client, const void** out) {
  auto* t = static_cast<Tee*>(client);
  for (;;) {
    ssize_t n = ::read(t->fd, t->buf.data(), t->buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      t->error = sys::sys_error("reading the tarball").error();
      archive_set_error(a, t->error->code, "%s", t->error->message.c_str());
      return -1;
    }
    if (n > 0) {
      if (auto r = t->copy->write(t->buf.data(), static_cast<std::size_t>(n)); !r) {
        t->error = r.error();
        archive_set_error(a, EIO, "%s", t->error->message.c_str());
        return -1;
      }
    }
    *out = t->buf.data();
    return n;
  }
}

}  // namespace

Result<IngestedImage> ingest_rootfs(FdRef file, const IngestOptions& opts, FdRef staging) {
  BlobWriter copy = POD_TRY(BlobWriter::create(staging));
  Tee tee{file.get(), &copy, {}, std::nullopt};
  ArchiveReader a(archive_read_new());
  if (!a) return make_error(ENOMEM, "archive_read_new");
  enable_image_filters(a.get());
  archive_read_support_format_raw(a.get());
  auto fail = [&](std::string_view doing) -> sys::Unexpected {
    if (tee.error) return sys::Unexpected(std::move(*tee.error));
    return make_error(EINVAL, "{}: {}", doing, archive_message(a.get()));
  };
  if (archive_read_open(a.get(), &tee, nullptr, tee_read, nullptr) != ARCHIVE_OK) return fail("truncated or corrupt archive");
  struct archive_entry* e = nullptr;
  if (archive_read_next_header(a.get(), &e) != ARCHIVE_OK) return fail("truncated or corrupt archive");

  // Filter 0 is the decompressor next to the data; the last is the plain reader.
  int filters = archive_filter_count(a.get());
  int code = archive_filter_code(a.get(), 0);
  bool as_is = filters == 1 ||
               (filters == 2 && (code == ARCHIVE_FILTER_GZIP || code == ARCHIVE_FILTER_ZSTD));
  std::optional<BlobWriter> plain;
  if (!as_is) plain.emplace(POD_TRY(BlobWriter::create(staging)));

  Sha256 diff;
  std::uint64_t total = 0;
  std::array<char, 1 << 16> buf;
  for (;;) {
    la_ssize_t n = archive_read_data(a.get(), buf.data(), buf.size());
    if (n < 0) return fail("truncated or corrupt archive");
    if (n == 0) break;
    total += static_cast<std::uint64_t>(n);
    if (total > opts.limits.max_layer_bytes)
      return make_error(EFBIG, "the tarball is larger than the limit of {} bytes uncompressed",
                        opts.limits.max_layer_bytes);
    diff.update(buf.data(), static_cast<std::size_t>(n));
    if (plain) POD_TRY(plain->write(buf.data(), static_cast<std::size_t>(n)));
  }
  Digest diff_id = diff.finish();

  std::string mt;
  StagedBlob layer;
  if (as_is) {
    // Bytes after the compressed stream belong to the file as given.
    for (const void* p = nullptr;;) {
      la_ssize_t n = tee_read(a.get(), &tee, &p);
      if (n < 0) return fail("reading the tarball");
      if (n == 0) break;
    }
    layer = POD_TRY_CTX(copy.commit(), "staging the layer");
    mt = filters == 1                          ? media::kOciLayer
         : code == ARCHIVE_FILTER_GZIP ? media::kOciLayerGzip
                                               : media::kOciLayerZstd;
  } else {
    layer = POD_TRY_CTX(plain->commit(), "staging the layer");
    mt = media::kOciLayer;
    if (opts.warn)
      opts.warn(fmt::format("rootfs: {} compression has no OCI media type; the layer is stored uncompressed",
                            archive_filter_name(a.get(), 0)));
  }
  if (filters == 1 && layer.digest != diff_id)
    return make_error(EIO, "the tarball changed while it was read");

  std::string now = now_rfc3339();
  json cfg = {{"created", now},
              {"architecture", opts.platform.architecture},
              {"os", opts.platform.os.empty() ? "linux" : opts.platform.os},
              {"config", json::object()},
              {"rootfs", {{"type", "layers"}, {"diff_ids", json::array({diff_id.str()})}}},
              {"history", json::array({{{"created", now}, {"created_by", "pod image import (rootfs tarball)"}}})}};
  if (!opts.platform.variant.empty()) cfg["variant"] = opts.platform.variant;
  Descriptor ld{mt, layer.digest, layer.size, {}, {}};
  Descriptor man = POD_TRY(stage_image(staging, cfg.dump(), {ld}));
  return IngestedImage{Format::rootfs, man, ""};
}

}  // namespace pod::cas::detail
