# Registry fetch: the OCI distribution API over libcurl, feeding the import pipeline.
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
add_library(pod_cas_fetch STATIC
  src/registry_ref.cpp
  src/registry_http.cpp
  src/registry.cpp
  src/fetch.cpp
)
target_link_libraries(pod_cas_fetch
  PUBLIC pod_cas
  PRIVATE PkgConfig::CURL PkgConfig::LIBARCHIVE nlohmann_json::nlohmann_json Threads::Threads)
