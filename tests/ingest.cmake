# Image formats: each read from fixtures made at test time by umoci, skopeo, actool, tar.
pod_unit_test(ingest_test
  SOURCES unit/ingest_formats_test.cpp unit/ingest_errors_test.cpp
  LIBS pod_cas_ingest nlohmann_json::nlohmann_json)
target_compile_definitions(ingest_test PRIVATE
  POD_FIXTURES_DIR="${CMAKE_CURRENT_SOURCE_DIR}/fixtures")
target_include_directories(ingest_test PRIVATE ${PROJECT_SOURCE_DIR}/cas/src)
target_link_libraries(ingest_test PRIVATE pod_libarchive)
set_tests_properties(unit.ingest_test PROPERTIES TIMEOUT 300)
