#include "commands.hpp"

namespace pod::cmd {

void add_pod_commands(CLI::App&) {}

}  // namespace pod::cmd
