// Staging blobs and reading tars, for every format reader.
#include <sys/stat.h>

#include <array>
#include <chrono>
#include <ctime>

#include "ingest_internal.hpp"
#include "pod/sys/fs.hpp"

namespace pod::cas::detail {

using sys::make_error;
using sys::sys_error;

Result<BlobWriter> BlobWriter::create(FdRef staging) {
  for (int i = 0; i < 16; ++i) {
    std::string tmp = ".ingest-" + sys::random_hex(8) + ".tmp";
    auto fd = sys::open_at(staging, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
    if (fd) return BlobWriter(staging.get(), std::move(tmp), std::move(*fd));
    if (fd.error().code != EEXIST) return sys::Unexpected(std::move(fd).error().context("creating a staging file"));
  }
  return make_error(EEXIST, "no free temporary name in staging");
}

BlobWriter::BlobWriter(BlobWriter&& o) noexcept
    : staging_(o.staging_), tmp_(std::move(o.tmp_)), fd_(std::move(o.fd_)), sha_(std::move(o.sha_)),
      size_(o.size_), head_(o.head_), done_(std::exchange(o.done_, true)) {}

BlobWriter::~BlobWriter() {
  if (!done_) ::unlinkat(staging_, tmp_.c_str(), 0);
}

Result<void> BlobWriter::write(const void* data, std::size_t n) {
  auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; size_ + i < head_.head.size() && i < n; ++i) head_.head[size_ + i] = p[i];
  sha_.update(data, n);
  POD_TRY_CTX(sys::write_all(fd_, std::string_view(static_cast<const char*>(data), n)), "writing to staging");
  size_ += n;
  return {};
}

Result<StagedBlob> BlobWriter::commit(const Descriptor* expected) {
  head_.digest = sha_.finish();
  head_.size = size_;
  if (expected) POD_TRY(check_blob(*expected, size_, head_.digest));
  if (::fchmod(fd_.get(), 0444) != 0) return sys_error("fchmod staging file");
  POD_TRY_CTX(sys::fsync_fd(fd_), "syncing staging file");
  fd_.reset();
  if (::renameat(staging_, tmp_.c_str(), staging_, head_.digest.hex.c_str()) != 0)
    return sys_error("renaming staging file to {}", head_.digest.hex);
  done_ = true;
  return head_;
}

Result<void> check_blob(const Descriptor& d, std::uint64_t size, const Digest& got) {
  if (size != d.size)
    return make_error(EINVAL, "blob {}: size mismatch: {} bytes, the descriptor says {}", d.digest.str(), size,
                      d.size);
  if (got != d.digest)
    return make_error(EINVAL, "blob {}: digest mismatch: the content hashes to {}", d.digest.str(), got.str());
  return {};
}

Result<StagedBlob> stage_bytes(FdRef staging, std::string_view data) {
  BlobWriter w = POD_TRY(BlobWriter::create(staging));
  POD_TRY(w.write(data.data(), data.size()));
  return w.commit();
}

Result<StagedBlob> stage_copy(FdRef staging, FdRef fd, const Descriptor& d) {
  BlobWriter w = POD_TRY(BlobWriter::create(staging));
  std::array<char, 1 << 16> buf;
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_error("reading blob {}", d.digest.str());
    }
    if (n == 0) break;
    // Stop early on a blob longer than it claims to be.
    if (w.size() + static_cast<std::uint64_t>(n) > d.size)
      return make_error(EINVAL, "blob {}: size mismatch: more than the {} bytes the descriptor says",
                        d.digest.str(), d.size);
    POD_TRY(w.write(buf.data(), static_cast<std::size_t>(n)));
  }
  return w.commit(&d);
}

Result<Fd> open_staged(FdRef staging, const Digest& d) {
  if (!Digest::valid_hex(d.hex)) return make_error(EINVAL, "'{}' is not a digest", d.hex);
  return sys::open_in(staging, d.hex, O_RDONLY, sys::Resolve::beneath_no_symlinks);
}

Result<ArchiveReader> open_tar(FdRef fd) {
  ArchiveReader a(archive_read_new());
  if (!a) return make_error(ENOMEM, "archive_read_new");
  enable_image_filters(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open_fd(a.get(), fd.get(), 1 << 16) != ARCHIVE_OK) {
    // libarchive fails the open when it cannot decompress the start: say so when
    // the file begins as a compressed stream does.
    std::array<unsigned char, 6> m{};
    bool compressed = ::pread(fd.get(), m.data(), m.size(), 0) == static_cast<ssize_t>(m.size()) &&
                      ((m[0] == 0x1f && m[1] == 0x8b) || (m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f) ||
                       (m[0] == 'B' && m[1] == 'Z' && m[2] == 'h') || (m[0] == 0xfd && m[1] == '7' && m[2] == 'z'));
    if (compressed) return make_error(EINVAL, "truncated or corrupt archive: {}", archive_message(a.get()));
    return make_error(EINVAL, "not a tar archive (plain or compressed): {}", archive_message(a.get()));
  }
  return a;
}

std::string archive_message(struct archive* a) {
  const char* s = archive_error_string(a);
  return s ? s : "unknown libarchive error";
}

std::string member_name(const char* raw) {
  std::string_view n = raw ? raw : "";
  while (n.starts_with("./")) n.remove_prefix(2);
  while (n.ends_with('/')) n.remove_suffix(1);
  if (n == ".") n = "";
  return std::string(n);
}

Result<bool> next_member(struct archive* a, struct archive_entry** e) {
  int r = archive_read_next_header(a, e);
  if (r == ARCHIVE_EOF) return false;
  if (r == ARCHIVE_OK || r == ARCHIVE_WARN) return true;
  return make_error(EINVAL, "truncated or corrupt archive: {}", archive_message(a));
}

Result<std::string> read_member(struct archive* a, std::uint64_t limit) {
  std::string out;
  std::array<char, 1 << 16> buf;
  for (;;) {
    la_ssize_t n = archive_read_data(a, buf.data(), buf.size());
    if (n < 0) return make_error(EINVAL, "truncated or corrupt archive: {}", archive_message(a));
    if (n == 0) return out;
    if (out.size() + static_cast<std::size_t>(n) > limit)
      return make_error(EFBIG, "larger than the limit of {} bytes", limit);
    out.append(buf.data(), static_cast<std::size_t>(n));
  }
}

Result<void> copy_member(struct archive* a, BlobWriter& w) {
  std::array<char, 1 << 16> buf;
  for (;;) {
    la_ssize_t n = archive_read_data(a, buf.data(), buf.size());
    if (n < 0) return make_error(EINVAL, "truncated or corrupt archive: {}", archive_message(a));
    if (n == 0) return {};
    POD_TRY(w.write(buf.data(), static_cast<std::size_t>(n)));
  }
}

Result<void> skip_member(struct archive* a) {
  if (archive_read_data_skip(a) != ARCHIVE_OK)
    return make_error(EINVAL, "truncated or corrupt archive: {}", archive_message(a));
  return {};
}

Result<json> parse_object(std::string_view text, std::string_view what) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return make_error(EINVAL, "{} is not valid JSON", what);
  if (!j.is_object()) return make_error(EINVAL, "{} is not a JSON object", what);
  return j;
}

Result<void> check_oci_layout(std::string_view text) {
  json j = POD_TRY(parse_object(text, "oci-layout"));
  auto v = j.find("imageLayoutVersion");
  if (v == j.end() || !v->is_string()) return make_error(EINVAL, "oci-layout has no 'imageLayoutVersion'");
  auto s = v->get<std::string>();
  if (!s.starts_with("1.")) return make_error(EINVAL, "oci-layout: unsupported imageLayoutVersion '{}'", s);
  return {};
}

Result<void> check_layer_count(const Manifest& m, std::string_view config_text) {
  ImageConfig cfg = POD_TRY_CTX(parse_config(config_text), "config {}", m.config.digest.str());
  if (cfg.diff_ids.size() != m.layers.size())
    return make_error(EINVAL, "config {} lists {} diff_ids but the manifest has {} layers", m.config.digest.str(),
                      cfg.diff_ids.size(), m.layers.size());
  return {};
}

std::string now_rfc3339() {
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  struct tm tm {};
  ::gmtime_r(&t, &tm);
  std::array<char, 32> buf{};
  std::size_t n = std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(buf.data(), n);
}

Result<Descriptor> stage_manifest(FdRef staging, const StagedBlob& config, std::vector<Descriptor> layers) {
  Manifest m;
  m.media_type = std::string(media::kOciManifest);
  m.config = Descriptor{std::string(media::kOciConfig), config.digest, config.size, {}, {}};
  m.layers = std::move(layers);
  std::string text = manifest_json(m);
  // What we write must be what the caller's parser accepts.
  POD_TRY_CTX(parse_manifest(text), "made manifest");
  StagedBlob man = POD_TRY_CTX(stage_bytes(staging, text), "staging the manifest");
  return Descriptor{std::string(media::kOciManifest), man.digest, man.size, {}, {}};
}

Result<Descriptor> stage_image(FdRef staging, const std::string& config_text, std::vector<Descriptor> layers) {
  StagedBlob cfg = POD_TRY_CTX(stage_bytes(staging, config_text), "staging the config");
  return stage_manifest(staging, cfg, std::move(layers));
}

}  // namespace pod::cas::detail
