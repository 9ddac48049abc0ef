// pod unshare [-- CMD]: a command inside the store's user namespace, where the store's
// files show the owners the images give them (to read or fix the store by hand).
#include <unistd.h>

#include <cstdlib>

#include "commands.hpp"
#include "context.hpp"

namespace pod::cmd {

namespace {

int run_unshare(std::vector<std::string> argv) {
  auto basis = enter_store_namespace();
  if (!basis) return report(basis.error());
  if (argv.empty()) {
    const char* shell = std::getenv("SHELL");
    argv.push_back(shell && *shell ? shell : "/bin/sh");
  }
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  ::execvp(args[0], args.data());
  int err = errno;
  report(sys::Error{err, fmt::format("cannot run '{}'", argv[0])});
  return err == ENOENT ? 127 : 126;
}

}  // namespace

void add_unshare_command(CLI::App& app) {
  static std::vector<std::string> argv;
  auto* c = app.add_subcommand("unshare", "run CMD (default: $SHELL) in the store's user namespace");
  c->add_option("CMD", argv, "command and arguments, after --");
  c->callback([] { chosen_action() = [] { return run_unshare(argv); }; });
}

}  // namespace pod::cmd
