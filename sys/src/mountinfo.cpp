// mountinfo(5): "ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER".
#include "pod/sys/mountinfo.hpp"

#include <charconv>

#include "pod/sys/fs.hpp"

namespace pod::sys {

namespace {

// The kernel writes space, tab, newline and backslash in paths as \ooo.
std::string unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    bool octal = s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
                 s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7';
    if (octal) {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  while (!line.empty()) {
    auto sp = line.find(' ');
    if (sp != 0) out.push_back(line.substr(0, sp));
    if (sp == std::string_view::npos) break;
    line.remove_prefix(sp + 1);
  }
  return out;
}

bool number(std::string_view s, std::uint64_t& v) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

std::vector<MountInfo> parse_mountinfo(std::string_view text) {
  std::vector<MountInfo> out;
  while (!text.empty()) {
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    auto f = fields(line);
    // Six fixed fields, optional ones, "-", then three more.
    std::size_t dash = 6;
    while (dash < f.size() && f[dash] != "-") ++dash;
    if (f.size() < 6 || dash + 3 >= f.size()) continue;
    MountInfo m;
    if (!number(f[0], m.id) || !number(f[1], m.parent)) continue;
    m.root = unescape(f[3]);
    m.mount_point = unescape(f[4]);
    m.fstype = std::string(f[dash + 1]);
    m.source = unescape(f[dash + 2]);
    m.super_options = std::string(f[dash + 3]);
    out.push_back(std::move(m));
  }
  return out;
}

Result<std::vector<MountInfo>> read_mountinfo() {
  std::string text = POD_TRY(read_file(FdRef::cwd(), "/proc/self/mountinfo", 64 << 20));
  return parse_mountinfo(text);
}

}  // namespace pod::sys
