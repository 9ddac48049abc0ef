#include "commands.hpp"

namespace pod::cmd {

void add_run_command(CLI::App&) {}

}  // namespace pod::cmd
