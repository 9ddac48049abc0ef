#include "commands.hpp"

namespace pod::cmd {

void add_doctor_command(CLI::App&) {}

}  // namespace pod::cmd
