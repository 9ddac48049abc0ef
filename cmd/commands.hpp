// Each group of commands registers its subcommands; the chosen one's action runs
// after parsing and returns the exit status.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

#include "pod/sys/error.hpp"

namespace pod::cmd {

using Action = std::function<int()>;

// Where a subcommand puts its action when it is chosen.
Action& chosen_action();

void add_image_commands(CLI::App& app);
void add_fetch_command(CLI::App& image);  // pod image fetch, registered by add_image_commands
void add_unshare_command(CLI::App& app);
void add_idmap_commands(CLI::App& app);
void add_volume_commands(CLI::App& app);

// Prints "pod: MESSAGE" (and the errno name) for an error; returns exit status 1.
int report(const struct sys::Error& e);

}  // namespace pod::cmd
