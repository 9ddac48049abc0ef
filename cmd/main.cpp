// pod: the command line. The only place that prints errors.
#include <cstdio>
#include <initializer_list>
#include <string_view>

#include "commands.hpp"
#include "context.hpp"
#include "pod/sys/progress.hpp"

namespace pod::cmd {

Action& chosen_action() {
  static Action a;
  return a;
}

int report(const sys::Error& e) {
  std::fprintf(stderr, "pod: %s\n", e.what().c_str());
  return 1;
}

// The subcommand named on the command line, after the global options; nullptr when
// there is none (help, version, a mistake).
const char* named_command(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--root") {
      ++i;
    } else if (a.starts_with("--root=") || a == "--debug" || a == "--quiet") {
    } else {
      return a.starts_with("-") ? nullptr : argv[i];
    }
  }
  return nullptr;
}

// Registers the group of commands the command line names, or every group when it names
// none of them. Building CLI11's tree of every command and option, and taking it down,
// was a sixth of the time `pod --version` spent in pod's own code.
void add_commands(CLI::App& app, const char* named) {
  struct Group {
    std::initializer_list<std::string_view> names;
    void (*add)(CLI::App&);
  };
  static const Group groups[] = {
      {{"image"}, add_image_commands},   {{"unshare"}, add_unshare_command},
      {{"idmap"}, add_idmap_commands},   {{"volume"}, add_volume_commands},
      {{"run"}, add_run_command},        {{"list", "status", "stop", "enter", "rm", "gc"}, add_pod_commands},
      {{"doctor"}, add_doctor_command},
  };
  if (named)
    for (const Group& g : groups)
      for (std::string_view n : g.names)
        if (n == named) return g.add(app);
  for (const Group& g : groups) g.add(app);
}

}  // namespace pod::cmd

int main(int argc, char** argv) {
  using namespace pod::cmd;
  CLI::App app{"pod: rootless pods with every namespace, images owned as they say, cgroup limits", "pod"};
  app.set_version_flag("--version", "pod 0.1.0");
  app.require_subcommand(1);
  auto& g = globals();
  g.argv.assign(argv, argv + argc);
  app.add_option("--root", g.root, "store directory (default: $POD_ROOT, /var/lib/pod for root, "
                                   "$XDG_DATA_HOME/pod for users)");
  app.add_flag("--debug", g.debug, "more detail on errors");
  app.add_flag("--quiet", g.quiet, "no progress, notes or warnings");
  add_commands(app, named_command(argc, argv));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (g.quiet) pod::sys::Progress::disable();
  return chosen_action() ? chosen_action()() : 2;
}
