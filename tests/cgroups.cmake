# Cgroup isolators (runtime/src/cgroup_*.cpp): the flag value parsers (unit), and pods
# with limits on this host's cgroups, as root and as an ordinary user (system).
pod_unit_test(cgroup_parse_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/cgroup_parse_test.cpp
  LIBS pod_runtime)
pod_system_test(cgroups_root)
