// Files and directories through descriptors: resolution inside a root, reads with a
// size limit, atomic writes, temporary directories and removal by walking fds.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>
#include <string_view>

#include "pod/sys/error.hpp"
#include "pod/sys/fd.hpp"

namespace pod::sys {

enum class Resolve {
  in_root,              // as if root were "/": ".." stops at it, absolute symlinks restart at it
  beneath,              // leaving root (by ".." or an absolute symlink) is EXDEV
  beneath_no_symlinks,  // as beneath, and any symlink on the way is ELOOP
};

// Opens `path` relative to `root`, never leaving it, never following magic links.
// Uses openat2 and, where the kernel lacks it (ENOSYS), a component-by-component
// O_PATH|O_NOFOLLOW walk with the same semantics.
[[nodiscard]] Result<Fd> open_in(FdRef root, std::string_view path, int flags, Resolve how,
                                 mode_t mode = 0);

// Test hook: force the walk even where openat2 exists.
void force_resolve_fallback(bool on);

// Plain openat with O_CLOEXEC, for paths the user gave us (not from an image).
[[nodiscard]] Result<Fd> open_at(FdRef dir, std::string_view path, int flags, mode_t mode = 0);
[[nodiscard]] Result<Fd> open_dir(FdRef dir, std::string_view path);

[[nodiscard]] Result<struct stat> stat_at(FdRef dir, std::string_view path, int flags);
[[nodiscard]] Result<struct stat> stat_fd(FdRef fd);
[[nodiscard]] bool exists_at(FdRef dir, std::string_view path);
// The names in a directory, without "." and "..", sorted.
[[nodiscard]] Result<std::vector<std::string>> list_dir(FdRef dir);

// The path /proc/self/fd/N names for an open file: where it is now, symlinks resolved.
[[nodiscard]] Result<std::string> fd_path(FdRef fd);

// mkdir -p of a path the user gave (a host path, so plain resolution is right);
// returns the last directory, open.
[[nodiscard]] Result<Fd> make_dirs(std::string_view path, mode_t mode);

// mkdirat; EEXIST of a directory is success.
[[nodiscard]] Result<void> ensure_dir(FdRef dir, std::string_view name, mode_t mode);

// Reads a whole file; EFBIG past `limit` bytes, before reading them all.
[[nodiscard]] Result<std::string> read_file(FdRef dir, std::string_view path, std::size_t limit);
[[nodiscard]] Result<std::string> read_fd(FdRef fd, std::size_t limit);
[[nodiscard]] Result<void> write_all(FdRef fd, std::string_view data);

// Writes `name` in `dir` so that readers see the old content or the new, never a part:
// a temporary file, fsync, rename over, fsync of the directory. Sync::no leaves out both
// fsyncs, for state that need not survive a crash (a running pod's files, which a crash
// ends anyway): still atomic for readers, and some 10 ms cheaper on this disk.
enum class Sync { yes, no };
[[nodiscard]] Result<void> write_file_atomic(FdRef dir, std::string_view name,
                                             std::string_view data, mode_t mode = 0644, Sync sync = Sync::yes);

[[nodiscard]] Result<void> fsync_fd(FdRef fd);

// Makes a fresh directory "<prefix>XXXXXX" in dir; returns its name.
[[nodiscard]] Result<std::string> make_temp_dir(FdRef dir, std::string_view prefix,
                                                mode_t mode = 0700);

// Removes dir/name and everything below it, walking by descriptors: never follows a
// symlink and never crosses into another filesystem (EXDEV). Missing name is success.
[[nodiscard]] Result<void> remove_tree(FdRef dir, std::string_view name);

// Random hex for temporary names.
[[nodiscard]] std::string random_hex(std::size_t bytes);

}  // namespace pod::sys
