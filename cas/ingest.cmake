# Image formats: OCI layout (dir and tar), docker-archive, ACI, rootfs tar.
add_library(pod_cas_ingest STATIC
  src/ingest.cpp
  src/ingest_common.cpp
  src/ingest_oci.cpp
  src/ingest_docker.cpp
  src/ingest_aci.cpp
  src/ingest_rootfs.cpp
)
target_link_libraries(pod_cas_ingest
  PUBLIC pod_cas_model
  PRIVATE pod_libarchive nlohmann_json::nlohmann_json)
