# Registry fetch: the OCI distribution API over libcurl, feeding the import pipeline.
# libcurl is loaded at run time (src/curl_api.cpp); only its headers are needed here.
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
add_library(pod_cas_fetch STATIC
  src/registry_ref.cpp
  src/registry_http.cpp
  src/registry.cpp
  src/fetch.cpp
  src/curl_api.cpp
)
target_link_libraries(pod_cas_fetch
  PUBLIC pod_cas
  PRIVATE pod_libarchive ${CMAKE_DL_LIBS} nlohmann_json::nlohmann_json Threads::Threads)
target_include_directories(pod_cas_fetch PRIVATE ${CURL_INCLUDE_DIRS})
