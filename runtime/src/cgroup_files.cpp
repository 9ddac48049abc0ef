// Control files of cgroupfs, and the layout of the host's cgroup mounts.
#include "cgroup_files.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>

#include "pod/runtime/pods.hpp"
#include "pod/sys/fs.hpp"
#include "pod/sys/mountinfo.hpp"

namespace pod::runtime::detail {

sys::Result<void> write_control(const std::string& path, std::string_view text) {
  sys::Fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return sys::sys_error("open '{}'", path);
  ssize_t n = ::write(fd.get(), text.data(), text.size());
  if (n < 0) return sys::sys_error("writing '{}' to '{}'", text, path);
  if (static_cast<std::size_t>(n) != text.size()) return sys::make_error(EIO, "short write of '{}' to '{}'", text, path);
  return {};
}

std::optional<std::string> read_control(const std::string& path) {
  auto text = sys::read_file(sys::FdRef::cwd(), path, 1 << 16);
  if (!text) return std::nullopt;
  while (!text->empty() && text->back() == '\n') text->pop_back();
  return std::move(*text);
}

std::vector<std::string> words(std::string_view text) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\n' || text[i] == ',')) ++i;
    std::size_t j = i;
    while (j < text.size() && text[j] != ' ' && text[j] != '\n' && text[j] != ',') ++j;
    if (j > i) out.emplace_back(text.substr(i, j - i));
    i = j;
  }
  return out;
}

bool unified_host() {
  struct statfs s {};
  return ::statfs(std::string(kCgroupRoot).c_str(), &s) == 0 && s.f_type == CGROUP2_SUPER_MAGIC;
}

sys::Result<std::vector<V1Hierarchy>> v1_hierarchies() {
  static constexpr std::string_view kKnown[] = {"memory", "cpu", "cpuacct", "pids", "blkio", "cpuset"};
  std::vector<V1Hierarchy> out;
  for (auto& m : POD_TRY(sys::read_mountinfo())) {
    if (m.fstype != "cgroup") continue;
    V1Hierarchy h{m.mount_point, {}};
    for (auto& opt : words(m.super_options))
      if (std::find(std::begin(kKnown), std::end(kKnown), opt) != std::end(kKnown)) h.controllers.push_back(opt);
    if (h.controllers.empty()) continue;
    bool seen = std::any_of(out.begin(), out.end(), [&](auto& o) { return o.controllers == h.controllers; });
    if (!seen) out.push_back(std::move(h));
  }
  return out;
}

bool is_pod_cgroup(std::string_view dir, std::string_view uuid) {
  std::string root = std::string(kCgroupRoot) + "/";
  std::string tail = fmt::format("/{}/{}", kPodParent, uuid);
  return is_uuid(uuid) && dir.starts_with(root) && dir.ends_with(tail) && dir.find("/../") == std::string_view::npos &&
         dir.find("/./") == std::string_view::npos && dir.find("//") == std::string_view::npos;
}

}  // namespace pod::runtime::detail
