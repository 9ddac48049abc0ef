# rkt's ACI isolators: quantities, each isolator, malformed values and the seccomp filters
# (runtime/src/aci_*.cpp), the import keeping them (cas/src/ingest_aci.cpp), pod run's
# flags over them (cmd/run_isolators.cpp) (unit); an ACI with isolators run as root (system).
pod_unit_test(aci_isolators_test
  SOURCES unit/aci_isolators_test.cpp unit/ingest_aci_isolators_test.cpp unit/run_isolators_test.cpp
          ${PROJECT_SOURCE_DIR}/cmd/run_isolators.cpp ${PROJECT_SOURCE_DIR}/cmd/run_setup.cpp
  LIBS pod_cas pod_runtime nlohmann_json::nlohmann_json)
target_include_directories(aci_isolators_test PRIVATE
  ${PROJECT_SOURCE_DIR}/runtime/src ${PROJECT_SOURCE_DIR}/cmd ${PROJECT_SOURCE_DIR}/cas/src)
target_compile_definitions(aci_isolators_test PRIVATE POD_FIXTURES_DIR="${CMAKE_CURRENT_SOURCE_DIR}/fixtures")
pod_system_test(aci_isolators)
