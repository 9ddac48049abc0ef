// The chown-shifting engine: re-owns a tree from one id map to another, keeping what
// chown clears (setuid/setgid bits, file capabilities) and the ids inside POSIX ACLs,
// each hard-linked inode once; resumable through a journal beside the tree.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pod/idmap/ranges.hpp"
#include "pod/shift/idshift.hpp"
#include "pod/shift/journal.hpp"
#include "pod/sys/fd.hpp"

namespace pod::shift {

struct Options {
  Unmapped unmapped = Unmapped::error;
  unsigned threads = 0;   // 0: one per core
  bool progress = false;  // a counter on stderr when it is a terminal
  bool dry_run = false;   // count what would change; write nothing, journal included
};

// An inode that could not be shifted (or, for verify, lies outside the target map).
struct Problem {
  std::string path;  // relative to the top of the tree, "." for the top
  std::string what;  // "uid 70000 is outside the source map"
};

struct Summary {
  std::uint64_t inodes = 0;    // inodes met, the top included
  std::uint64_t changed = 0;   // re-owned (or, dry run, that would be)
  std::uint64_t done = 0;      // already in the target map (a resumed run)
  std::uint64_t links = 0;     // hard links met again after their inode was handled
  std::uint64_t other_fs = 0;  // mount points not entered
  std::uint64_t overflowed = 0;  // ids sent to kOverflowId
  std::uint64_t problem_count = 0;
  std::vector<Problem> problems;  // the first kMaxProblems of them
  double seconds = 0;
};
constexpr std::size_t kMaxProblems = 20;

// Shifts the tree at `top` (a directory fd) from `from` to `to`. The journal names the
// maps and progress; a run killed at any point and started again with the same maps
// finishes the work and shifts no inode twice. Maps whose host ranges overlap are
// refused (see make_shift). Ids outside the source map are an error listing their
// paths (the rest of the tree is shifted, the journal stays open for a rerun), unless
// options.unmapped is overflow. With dry_run the journal is read, never written.
[[nodiscard]] Result<Summary> shift_tree(sys::FdRef top, const JournalFiles& journal, const idmap::MapSpec& from,
                                         const idmap::MapSpec& to, const Options& options);

// Walks the tree and lists every inode whose owner, ACL ids or capability root id lies
// outside `to` (kOverflowId allowed when `allow_overflow`), and v1/v2 capabilities
// (valid in every namespace). Changes nothing.
[[nodiscard]] Result<Summary> verify_tree(sys::FdRef top, const idmap::MapSpec& to, bool allow_overflow,
                                          const Options& options);

// "3 inodes have ids outside the source map: a/b (uid 5), ...": the problems as one error.
[[nodiscard]] sys::Error problems_error(const Summary& s, std::string_view what);

}  // namespace pod::shift
