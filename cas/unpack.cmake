# Layer unpacking and tree verification (libarchive, xxHash).
add_library(pod_cas_unpack STATIC
  src/unpack.cpp
  src/unpack_stream.cpp
  src/unpack_names.cpp
  src/unpack_xattrs.cpp
  src/verify_tree.cpp
)
target_link_libraries(pod_cas_unpack
  PUBLIC pod_cas_model
  PRIVATE pod_libarchive PkgConfig::XXHASH nlohmann_json::nlohmann_json Threads::Threads)
