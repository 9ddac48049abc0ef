// The journal of a shift, kept beside the tree: which maps, how far, and the few
// inodes whose setuid bits or capability a chown clears, written down before the
// chown so that a run killed in between can put them back.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "pod/idmap/ranges.hpp"
#include "pod/shift/idshift.hpp"
#include "pod/sys/fd.hpp"

namespace pod::shift {

struct Journal {
  enum class State { running, done };
  std::string from, to;  // canonical_text of each map
  Unmapped unmapped = Unmapped::error;
  State state = State::running;
  std::uint64_t inodes = 0, changed = 0;  // progress, informative only
};

[[nodiscard]] std::string journal_to_text(const Journal& j);
[[nodiscard]] Result<Journal> journal_from_text(std::string_view text);

// How a run starts, given the journal found beside the tree (if any).
enum class Start {
  fresh,    // no journal: ids already in the target map are foreign, not done
  resume,   // an interrupted run of the same shift: ids in the target map are done
  redo,     // a finished run of the same shift: walk again as a resume (cheap, fixes nothing twice)
};
// A journal of another shift, still running, is refused: finishing it comes first.
[[nodiscard]] Result<Start> plan_start(const std::optional<Journal>& found, std::string_view from,
                                       std::string_view to);

// What a chown would clear on one inode: its mode and capability value.
struct Intent {
  mode_t mode = 0;
  std::string capability;  // raw security.capability as it was, empty for none
};
using InodeKey = std::pair<std::uint64_t, std::uint64_t>;  // (st_dev, st_ino)

// One line per intent: "DEV INO MODE(octal) CAPHEX|-\n". A torn last line (killed
// mid-write) is ignored: its chown had not started.
[[nodiscard]] std::string intent_line(InodeKey k, const Intent& i);
[[nodiscard]] std::map<InodeKey, Intent> parse_intents(std::string_view text);

// The journal file and its intent log, in a directory beside the tree.
class JournalFiles {
 public:
  JournalFiles(sys::FdRef dir, std::string name) : dir_(dir), name_(std::move(name)) {}
  [[nodiscard]] Result<std::optional<Journal>> read() const;
  [[nodiscard]] Result<void> write(const Journal& j) const;  // atomic
  [[nodiscard]] Result<std::map<InodeKey, Intent>> read_intents() const;
  // Opens the intent log for appending (O_APPEND: one write per line, whole).
  [[nodiscard]] Result<sys::Fd> open_intents() const;
  [[nodiscard]] Result<void> remove_intents() const;
  [[nodiscard]] const std::string& name() const { return name_; }

 private:
  sys::FdRef dir_;
  std::string name_;
};

}  // namespace pod::shift
