// The values of pod run's limit flags: sizes, cpus, counts, DEV:RATE, cpu lists; the
// errors name the flag and the value.
#include <doctest/doctest.h>

#include "pod/runtime/cgroup.hpp"

using namespace pod::runtime;

namespace {
std::string error_of(const pod::sys::Result<std::uint64_t>& r) { return r ? "" : r.error().message; }
}  // namespace

TEST_CASE("sizes: plain bytes, K M G T as powers of 1024, B and iB, decimals") {
  CHECK(parse_size("--memory", "4096").value() == 4096);
  CHECK(parse_size("--memory", "512M").value() == 512ULL << 20);
  CHECK(parse_size("--memory", "512m").value() == 512ULL << 20);
  CHECK(parse_size("--memory", "1G").value() == 1ULL << 30);
  CHECK(parse_size("--memory", "1GiB").value() == 1ULL << 30);
  CHECK(parse_size("--memory", "64KB").value() == 64ULL << 10);
  CHECK(parse_size("--memory", "2T").value() == 2ULL << 40);
  CHECK(parse_size("--memory", "1.5G").value() == (3ULL << 30) / 2);
  CHECK(parse_size("--memory", "0.5k").value() == 512);
}

TEST_CASE("sizes: bad values are refused naming the flag and the value") {
  CHECK(error_of(parse_size("--memory", "12X")).starts_with("--memory '12X': not a size"));
  CHECK(error_of(parse_size("--memory", "")).starts_with("--memory '': not a size"));
  CHECK(error_of(parse_size("--memory", "-1M")).starts_with("--memory '-1M': not a size"));
  CHECK(error_of(parse_size("--memory", "M")).starts_with("--memory 'M': not a size"));
  CHECK(error_of(parse_size("--memory", "1.5")).starts_with("--memory '1.5': not a size"));  // decimals need a unit
  CHECK(error_of(parse_size("--memory", "1.G")).starts_with("--memory '1.G': not a size"));
  CHECK(error_of(parse_size("--memory", "0")) == "--memory '0': must be more than 0");
  CHECK(error_of(parse_size("--memory", "99999999999T")) == "--memory '99999999999T': too large");
  CHECK(error_of(parse_size("--memory", "18446744073709551616")).starts_with("--memory '18446744073709551616': not a size"));
  CHECK(parse_size("--memory", "1 G").error().code == EINVAL);
}

TEST_CASE("cpus: whole and decimal, at most three decimals, more than 0") {
  CHECK(parse_cpus("--cpus", "1").value() == 1000);
  CHECK(parse_cpus("--cpus", "1.5").value() == 1500);
  CHECK(parse_cpus("--cpus", "0.5").value() == 500);
  CHECK(parse_cpus("--cpus", "0.25").value() == 250);
  CHECK(parse_cpus("--cpus", "0.001").value() == 1);
  CHECK(parse_cpus("--cpus", "2.").error().message.starts_with("--cpus '2.': not a number of cpus"));
  CHECK(parse_cpus("--cpus", ".5").error().message.starts_with("--cpus '.5': not a number of cpus"));
  CHECK(parse_cpus("--cpus", "0.0001").error().message.starts_with("--cpus '0.0001': not a number of cpus"));
  CHECK(parse_cpus("--cpus", "half").error().message.starts_with("--cpus 'half': not a number of cpus"));
  CHECK(parse_cpus("--cpus", "0").error().message == "--cpus '0': must be more than 0");
  CHECK(parse_cpus("--cpus", "0.000").error().message == "--cpus '0.000': must be more than 0");
  CHECK(parse_cpus("--cpus", "5000").error().message == "--cpus '5000': more than 4096 cpus");
}

TEST_CASE("counts: positive whole numbers") {
  CHECK(parse_count("--pids", "100").value() == 100);
  CHECK(error_of(parse_count("--pids", "0")) == "--pids '0': must be more than 0");
  CHECK(error_of(parse_count("--pids", "10k")) == "--pids '10k': not a whole number");
  CHECK(error_of(parse_count("--pids", "-5")) == "--pids '-5': not a whole number");
  CHECK(error_of(parse_count("--pids", "")) == "--pids '': not a whole number");
}

TEST_CASE("DEV:RATE and DEV:N") {
  auto d = parse_device_value("--io-read-bps", "/dev/sda:10M", true);
  REQUIRE(d);
  CHECK(d->device == "/dev/sda");
  CHECK(d->value == 10ULL << 20);
  auto n = parse_device_value("--io-write-iops", "/dev/disk/by-id/x:y:100", false);
  REQUIRE(n);
  CHECK(n->device == "/dev/disk/by-id/x:y");  // the last colon splits
  CHECK(n->value == 100);
  CHECK(parse_device_value("--io-read-bps", "10M", true).error().message ==
        "--io-read-bps '10M': expected DEV:RATE (/dev/sda:10M)");
  CHECK(parse_device_value("--io-read-iops", "sda:10", false).error().message ==
        "--io-read-iops 'sda:10': the device is not an absolute path (/dev/sda)");
  CHECK(parse_device_value("--io-read-iops", "/dev/sda:1M", false).error().message ==
        "--io-read-iops '/dev/sda:1M': not a whole number");
  CHECK(parse_device_value("--io-write-bps", "/dev/sda:fast", true).error().message.starts_with(
      "--io-write-bps '/dev/sda:fast': not a size"));
}

TEST_CASE("devices resolve to a block device's major:minor") {
  auto chr = parse_device_limit("--io-read-bps", "/dev/null:1M", true);
  REQUIRE_FALSE(chr);
  CHECK(chr.error().message == "--io-read-bps '/dev/null:1M': '/dev/null' is not a block device");
  auto missing = parse_device_limit("--io-read-bps", "/dev/no-such-disk:1M", true);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == ENOENT);
  CHECK(missing.error().message.starts_with("--io-read-bps '/dev/no-such-disk:1M': device '/dev/no-such-disk'"));
}

TEST_CASE("cpu lists") {
  CHECK(parse_cpu_list("--cpuset-cpus", "0").value() == "0");
  CHECK(parse_cpu_list("--cpuset-cpus", "0-2,4").value() == "0-2,4");
  for (const char* bad : {"", "a", "2-1", "0,", ",1", "0-", "1--2", "0 1"})
    CHECK(parse_cpu_list("--cpuset-cpus", bad).error().message.starts_with(
        std::string("--cpuset-cpus '") + bad + "': not a cpu list"));
}

TEST_CASE("limits: controllers needed and how they read") {
  Limits l;
  CHECK(l.empty());
  CHECK(l.controllers().empty());
  l.memory = 512ULL << 20;
  l.cpu_millis = 1500;
  l.pids = 100;
  l.write_bps.push_back({"/dev/vda", 254, 0, 10ULL << 20});
  l.cpuset_cpus = "0-1";
  CHECK_FALSE(l.empty());
  CHECK(l.controllers() == std::vector<std::string>{"memory", "cpu", "pids", "io", "cpuset"});
  CHECK(l.describe() == "memory 512M, cpus 1.5, pids 100, io write 10M/s on /dev/vda (254:0), cpuset 0-1");
  Limits half;
  half.cpu_millis = 500;
  CHECK(half.describe() == "cpus 0.5");
}
