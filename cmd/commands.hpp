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
// import, export, fetch: the real ones in pod-image, forwarders to it in pod.
void add_image_archive_commands(CLI::App& image);
void add_fetch_command(CLI::App& image);  // pod image fetch, registered by add_image_archive_commands
void add_unshare_command(CLI::App& app);
void add_idmap_commands(CLI::App& app);
void add_volume_commands(CLI::App& app);
void add_run_command(CLI::App& app);     // run_command.cpp: pod run
void add_pod_commands(CLI::App& app);    // pod_commands.cpp: list, status, enter, stop, rm, gc
void add_doctor_command(CLI::App& app);  // doctor_command.cpp: pod doctor

// Prints "pod: MESSAGE" (and the errno name) for an error; returns exit status 1.
int report(const struct sys::Error& e);

}  // namespace pod::cmd
