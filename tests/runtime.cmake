# runtime/ spawn, init, in-pod mounts, security, enter: capability names and seccomp
# profiles (unit, reaching the private security.hpp); pods started for real from a
# busybox fixture (needs:root with a new user namespace, needs:userns as a user would).
pod_unit_test(runtime_security_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/runtime_security_test.cpp
  LIBS pod_runtime)
target_include_directories(runtime_security_test PRIVATE ${PROJECT_SOURCE_DIR}/runtime/src)
pod_priv_sources(${CMAKE_CURRENT_SOURCE_DIR}/priv/runtime_spawn_test.cpp)
pod_priv_libs(pod_runtime)
