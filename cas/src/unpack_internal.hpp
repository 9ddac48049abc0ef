// Private parts of layer unpacking shared by unpack.cpp, unpack_stream.cpp and
// verify_tree.cpp.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "pod/cas/unpack.hpp"
#include "pod/sys/error.hpp"

struct archive;
struct archive_entry;

namespace pod::cas::detail {

using sys::Error;

// One block of the decompressed tar stream.
struct Block {
  std::unique_ptr<char[]> data;
  std::size_t size = 0;
};

// Decompression and the diff_id SHA-256 on a thread of their own, feeding the tar
// reader through a small pool of blocks: the tar side never waits on inflate unless
// the pool is empty, and memory stays at kBlocks * kBlockSize whatever the layer.
class Decompressor {
 public:
  static constexpr std::size_t kBlocks = 8;
  static constexpr std::size_t kBlockSize = 1 << 20;

  Decompressor(FdRef blob, const UnpackOptions& opts);
  ~Decompressor();  // cancels and joins
  Decompressor(const Decompressor&) = delete;
  Decompressor& operator=(const Decompressor&) = delete;

  // The next full block, or nullptr at the end of the stream or on an error (see
  // error()). The block stays valid until it is given back with release().
  Block* pop();
  void release(Block* b);
  // Reads to the end of the stream (the diff_id covers trailing padding too), joins the
  // thread, and returns the diff_id or the producer's error.
  [[nodiscard]] Result<Digest> finish();
  // The producer's error, if it has stopped on one.
  [[nodiscard]] std::optional<Error> error();

 private:
  void run(FdRef blob, const UnpackOptions& opts);
  void push(Block* b);
  Block* take_free();  // nullptr when cancelled

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Block>> blocks_;
  std::vector<Block*> free_;
  std::deque<Block*> full_;
  bool done_ = false;       // producer reached the end (or failed)
  bool cancelled_ = false;  // consumer gave up
  std::optional<Error> error_;
  std::optional<Digest> digest_;
  std::thread thread_;
};

// Checks and normalises an entry name: a leading "./" and trailing slashes go, what is
// left must be plain components, at most max_depth of them. "" is the root.
[[nodiscard]] Result<std::string> normalise(std::string_view raw, std::uint32_t max_depth);
[[nodiscard]] std::uint32_t depth_of(std::string_view path);
// "a/b/c" -> {"a/b", "c"}; "c" -> {"", "c"}.
[[nodiscard]] std::pair<std::string_view, std::string_view> split_parent(std::string_view path);
[[nodiscard]] std::string join(std::string_view dir, std::string_view name);

// Applies the image's xattrs of an entry, minus the overlayfs ones (they would change
// what the layer means to overlayfs) and, when rootless, its own owner record. fd is
// the entry, or -1 for what cannot be opened (symlinks, devices, fifos): those are
// reached as dir/base through /proc/self/fd.
[[nodiscard]] Result<void> apply_xattrs(archive_entry* e, int fd, int dir, const std::string& base,
                                        std::string_view name, bool rootless, const Warn& warn);

// Paths in the file list: JSON strings when UTF-8, else hex (JSON has no raw bytes).
[[nodiscard]] bool valid_utf8(std::string_view s);
[[nodiscard]] std::string to_hex(std::string_view s);
[[nodiscard]] std::optional<std::string> from_hex(std::string_view s);

}  // namespace pod::cas::detail
