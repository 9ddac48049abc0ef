// The decompressing side of unpack_layer: libarchive's raw format with every filter,
// on a thread of its own, hashing the decompressed stream (the diff_id) as it goes.
#include <archive.h>
#include <archive_entry.h>
#include <unistd.h>

#include <cstring>

#include "pod/sys/progress.hpp"
#include "unpack_internal.hpp"

namespace pod::cas::detail {
namespace {

using sys::make_error;

constexpr std::size_t kReadSize = 1 << 20;

struct Source {
  int fd;
  off_t offset = 0;
  std::unique_ptr<char[]> buf;
  sys::Progress* progress = nullptr;
};

la_ssize_t read_blob(archive* a, void* ud, const void** out) {
  auto* s = static_cast<Source*>(ud);
  for (;;) {
    // read, not pread: a fetch hands us a pipe.
    ssize_t n = ::read(s->fd, s->buf.get(), kReadSize);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      archive_set_error(a, errno, "reading the layer blob: %s", std::strerror(errno));
      return -1;
    }
    s->offset += n;
    if (s->progress) s->progress->advance(static_cast<std::uint64_t>(n));
    *out = s->buf.get();
    return n;
  }
}

Error archive_failure(archive* a, std::string_view what) {
  int code = archive_errno(a);
  const char* msg = archive_error_string(a);
  return Error{code > 0 ? code : EINVAL, fmt::format("{}: {}", what, msg ? msg : "unknown error")};
}

}  // namespace

Decompressor::Decompressor(FdRef blob, const UnpackOptions& opts) {
  for (std::size_t i = 0; i < kBlocks; ++i) {
    auto b = std::make_unique<Block>();
    b->data = std::make_unique<char[]>(kBlockSize);
    free_.push_back(b.get());
    blocks_.push_back(std::move(b));
  }
  // opts outlives the thread: unpack_layer joins it before returning.
  thread_ = std::thread([this, blob, &opts] { run(blob, opts); });
}

Decompressor::~Decompressor() {
  {
    std::lock_guard lock(mu_);
    cancelled_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Block* Decompressor::take_free() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return cancelled_ || !free_.empty(); });
  if (cancelled_) return nullptr;
  Block* b = free_.back();
  free_.pop_back();
  b->size = 0;
  return b;
}

void Decompressor::push(Block* b) {
  {
    std::lock_guard lock(mu_);
    full_.push_back(b);
  }
  cv_.notify_all();
}

Block* Decompressor::pop() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return done_ || !full_.empty(); });
  if (full_.empty()) return nullptr;
  Block* b = full_.front();
  full_.pop_front();
  return b;
}

void Decompressor::release(Block* b) {
  if (!b) return;
  {
    std::lock_guard lock(mu_);
    free_.push_back(b);
  }
  cv_.notify_all();
}

std::optional<Error> Decompressor::error() {
  std::lock_guard lock(mu_);
  return error_;
}

Result<Digest> Decompressor::finish() {
  while (Block* b = pop()) release(b);
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mu_);
  if (error_) return sys::Unexpected(*error_);
  if (!digest_) return make_error(EINVAL, "decompressing the layer: stopped early");
  return *digest_;
}

void Decompressor::run(FdRef blob, const UnpackOptions& opts) {
  auto stop = [&](std::optional<Error> err, std::optional<Digest> digest) {
    {
      std::lock_guard lock(mu_);
      error_ = std::move(err);
      digest_ = std::move(digest);
      done_ = true;
    }
    cv_.notify_all();
  };
  std::optional<sys::Progress> progress;
  if (opts.progress_total > 0) progress.emplace(opts.progress_label, opts.progress_total);
  // A file is read from its start; a pipe (ESPIPE) from wherever it is.
  if (::lseek(blob.get(), 0, SEEK_SET) < 0 && errno != ESPIPE)
    return stop(Error{errno, "seeking the layer blob"}, std::nullopt);
  Source src{blob.get(), 0, std::make_unique<char[]>(kReadSize), progress ? &*progress : nullptr};

  std::unique_ptr<archive, decltype(&archive_read_free)> a(archive_read_new(), &archive_read_free);
  if (!a) return stop(Error{ENOMEM, "archive_read_new"}, std::nullopt);
  enable_image_filters(a.get());
  archive_read_support_format_raw(a.get());
  if (archive_read_open(a.get(), &src, nullptr, read_blob, nullptr) != ARCHIVE_OK)
    return stop(archive_failure(a.get(), "decompressing the layer"), std::nullopt);

  Sha256 sha;
  archive_entry* e = nullptr;
  int r = archive_read_next_header(a.get(), &e);
  if (r == ARCHIVE_EOF) return stop(std::nullopt, sha.finish());  // an empty blob
  if (r < ARCHIVE_WARN) return stop(archive_failure(a.get(), "decompressing the layer"), std::nullopt);

  const std::uint64_t limit = opts.limits.max_layer_bytes;
  std::uint64_t total = 0;
  Block* cur = take_free();
  if (!cur) return stop(Error{ECANCELED, "cancelled"}, std::nullopt);
  for (;;) {
    const void* p = nullptr;
    std::size_t n = 0;
    la_int64_t off = 0;
    r = archive_read_data_block(a.get(), &p, &n, &off);
    if (r == ARCHIVE_EOF) break;
    // What came before an error still goes to the tar reader, so that the error can
    // name the entry it cut short.
    auto flush_and_stop = [&](Error err) {
      if (cur->size > 0)
        push(cur);
      else
        release(cur);
      stop(std::move(err), std::nullopt);
    };
    if (r < ARCHIVE_WARN) return flush_and_stop(archive_failure(a.get(), "decompressing the layer"));
    std::optional<Error> over;
    if (n > limit - total) {  // stop at the limit, not after the block that passes it
      over = Error{EFBIG, fmt::format("the layer unpacks to more than {} bytes (raise the limit with "
                                      "--max-layer-bytes)", limit)};
      n = static_cast<std::size_t>(limit - total);
    }
    total += n;
    sha.update(p, n);
    const char* in = static_cast<const char*>(p);
    while (n > 0) {
      std::size_t take = std::min(n, kBlockSize - cur->size);
      std::memcpy(cur->data.get() + cur->size, in, take);
      cur->size += take;
      in += take;
      n -= take;
      if (cur->size == kBlockSize) {
        push(cur);
        cur = take_free();
        if (!cur) return stop(Error{ECANCELED, "cancelled"}, std::nullopt);
      }
    }
    if (over) return flush_and_stop(std::move(*over));
  }
  if (cur->size > 0)
    push(cur);
  else
    release(cur);
  stop(std::nullopt, sha.finish());
}

}  // namespace pod::cas::detail
