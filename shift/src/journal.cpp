#include "pod/shift/journal.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <charconv>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "pod/sys/fs.hpp"

namespace pod::shift {

using json = nlohmann::json;

std::string journal_to_text(const Journal& j) {
  json o = {{"version", 1},
            {"from", j.from},
            {"to", j.to},
            {"unmapped", j.unmapped == Unmapped::overflow ? "overflow" : "error"},
            {"state", j.state == Journal::State::done ? "done" : "running"},
            {"inodes", j.inodes},
            {"changed", j.changed}};
  return o.dump(2) + "\n";
}

Result<Journal> journal_from_text(std::string_view text) {
  json o = json::parse(text, nullptr, false);
  if (o.is_discarded() || !o.is_object()) return sys::make_error(EINVAL, "the shift journal is not JSON");
  try {
    if (o.at("version").get<int>() != 1) return sys::make_error(EINVAL, "shift journal version {} is unknown", o.at("version").dump());
    Journal j;
    j.from = o.at("from").get<std::string>();
    j.to = o.at("to").get<std::string>();
    std::string u = o.at("unmapped").get<std::string>(), st = o.at("state").get<std::string>();
    if ((u != "error" && u != "overflow") || (st != "done" && st != "running"))
      return sys::make_error(EINVAL, "shift journal: unmapped '{}' or state '{}' is unknown", u, st);
    j.unmapped = u == "overflow" ? Unmapped::overflow : Unmapped::error;
    j.state = st == "done" ? Journal::State::done : Journal::State::running;
    j.inodes = o.value("inodes", std::uint64_t{0});
    j.changed = o.value("changed", std::uint64_t{0});
    return j;
  } catch (const json::exception& e) {
    return sys::make_error(EINVAL, "shift journal: {}", e.what());
  }
}

Result<Start> plan_start(const std::optional<Journal>& found, std::string_view from, std::string_view to) {
  if (!found) return Start::fresh;
  bool same = found->from == from && found->to == to;
  if (same) return found->state == Journal::State::done ? Start::redo : Start::resume;
  if (found->state == Journal::State::running)
    return sys::make_error(EBUSY, "an interrupted remap from {} to {} is pending: run it again with those maps first",
                           found->from, found->to);
  // A finished shift of other maps: the tree's owners are now in its target map.
  if (found->to != from)
    return sys::make_error(EINVAL, "the tree was last remapped to {}, not from {}", found->to, from);
  return Start::fresh;
}

std::string intent_line(InodeKey k, const Intent& i) {
  std::string hex;
  for (unsigned char c : i.capability) hex += fmt::format("{:02x}", c);
  return fmt::format("{} {} {:o} {}\n", k.first, k.second, i.mode, hex.empty() ? "-" : hex);
}

namespace {

template <class T>
bool number(std::string_view s, T& out, int base = 10) {
  auto r = std::from_chars(s.data(), s.data() + s.size(), out, base);
  return r.ec == std::errc() && r.ptr == s.data() + s.size() && !s.empty();
}

}  // namespace

std::map<InodeKey, Intent> parse_intents(std::string_view text) {
  std::map<InodeKey, Intent> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) break;  // torn last line
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    std::string_view f[4];
    std::size_t n = 0, p = 0;
    while (n < 4 && p <= line.size()) {
      std::size_t sp = line.find(' ', p);
      if (sp == std::string_view::npos) sp = line.size();
      f[n++] = line.substr(p, sp - p);
      p = sp + 1;
    }
    InodeKey k;
    Intent i;
    unsigned mode = 0;
    if (n != 4 || p <= line.size() || !number(f[0], k.first) || !number(f[1], k.second) || !number(f[2], mode, 8)) continue;
    i.mode = static_cast<mode_t>(mode);
    if (f[3] != "-") {
      if (f[3].size() % 2) continue;
      bool ok = true;
      for (std::size_t h = 0; h < f[3].size() && ok; h += 2) {
        unsigned byte = 0;
        ok = number(f[3].substr(h, 2), byte, 16);
        i.capability += static_cast<char>(byte);
      }
      if (!ok) continue;
    }
    out[k] = std::move(i);  // the latest intent for an inode wins
  }
  return out;
}

Result<std::optional<Journal>> JournalFiles::read() const {
  if (!sys::exists_at(dir_, name_)) return std::optional<Journal>{};
  std::string text = POD_TRY_CTX(sys::read_file(dir_, name_, 1 << 16), "reading the shift journal '{}'", name_);
  Journal j = POD_TRY_CTX(journal_from_text(text), "shift journal '{}'", name_);
  return std::optional<Journal>{std::move(j)};
}

Result<void> JournalFiles::write(const Journal& j) const {
  POD_TRY_CTX(sys::write_file_atomic(dir_, name_, journal_to_text(j), 0600), "writing the shift journal '{}'", name_);
  return {};
}

Result<std::map<InodeKey, Intent>> JournalFiles::read_intents() const {
  std::string name = name_ + ".intents";
  if (!sys::exists_at(dir_, name)) return std::map<InodeKey, Intent>{};
  std::string text = POD_TRY_CTX(sys::read_file(dir_, name, 64 << 20), "reading '{}'", name);
  return parse_intents(text);
}

Result<sys::Fd> JournalFiles::open_intents() const {
  return sys::open_at(dir_, name_ + ".intents", O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW, 0600);
}

Result<void> JournalFiles::remove_intents() const {
  if (::unlinkat(dir_.get(), (name_ + ".intents").c_str(), 0) < 0 && errno != ENOENT)
    return sys::sys_error("removing '{}.intents'", name_);
  return {};
}

}  // namespace pod::shift
