// In `pod`: image import, export and fetch run pod-image, installed beside pod, with
// our own arguments. Keeping libarchive's writers and libcurl out of `pod` keeps every
// other command, pod run first, from loading them.
#include <unistd.h>

#include <climits>
#include <cstdio>

#include "commands.hpp"
#include "context.hpp"

namespace pod::cmd {

namespace {

int exec_pod_image() {
  char self[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return report(sys::Error{errno, "cannot find our own executable (/proc/self/exe)"});
  std::string path(self, static_cast<std::size_t>(n));
  path = path.substr(0, path.rfind('/') + 1) + "pod-image";
  auto& argv = globals().argv;
  std::vector<char*> args(argv.begin(), argv.end());
  args.push_back(nullptr);
  ::execv(path.c_str(), args.data());
  return report(sys::Error{errno, fmt::format("cannot run {} (it is installed beside pod)", path)});
}

}  // namespace

void add_image_archive_commands(CLI::App& image) {
  const std::pair<const char*, const char*> commands[] = {
      {"import", "import an image archive or directory; prints its digest"},
      {"export", "write an image as an archive, owners as the image says"},
      {"fetch", "fetch an image from a registry (docker://HOST/REPO[:TAG|@DIGEST])"},
  };
  for (const auto& [name, what] : commands) {
    auto* sub = image.add_subcommand(name, what);
    sub->allow_extras();
    sub->prefix_command();
    sub->set_help_flag();  // --help goes to pod-image with the rest
    sub->callback([] { chosen_action() = [] { return exec_pod_image(); }; });
  }
}

}  // namespace pod::cmd
