# Registry fetch: parsers here; the system tests run a real docker-registry, a token
# server and a misbehaving fake registry on loopback.
pod_unit_test(fetch_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/fetch_ref_test.cpp
  LIBS pod_cas_fetch)
pod_system_test(fetch_registry)
pod_system_test(fetch_faults)
