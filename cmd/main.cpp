// pod: the command line. The only place that prints errors.
#include <cstdio>

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
  add_image_commands(app);
  add_unshare_command(app);
  add_idmap_commands(app);
  add_volume_commands(app);
  add_run_command(app);
  add_pod_commands(app);
  add_doctor_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (g.quiet) pod::sys::Progress::disable();
  return chosen_action() ? chosen_action()() : 2;
}
