# runtime/src/pods*.cpp: records, state, find, stop, rm and gc (unit, on real child
# processes holding the lock); unmounting below a removed pod (needs:root); the
# lifecycle commands on an empty store (system).
pod_unit_test(pods_test
  SOURCES unit/pods_records_test.cpp unit/pods_store_test.cpp unit/pods_process_test.cpp
  LIBS pod_runtime nlohmann_json::nlohmann_json)
pod_priv_sources(${CMAKE_CURRENT_SOURCE_DIR}/priv/pods_mounts_test.cpp)
pod_priv_libs(pod_runtime)
pod_system_test(pods_cli)
