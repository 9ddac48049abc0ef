# Layer unpacking (cas/unpack.cmake): unit tests, and the parts that need root.
pod_unit_test(unpack_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/unpack_test.cpp
          ${CMAKE_CURRENT_SOURCE_DIR}/unit/unpack_verify_test.cpp
  LIBS pod_cas_unpack pod_libarchive)
pod_priv_sources(${CMAKE_CURRENT_SOURCE_DIR}/priv/unpack_root_test.cpp
                  ${CMAKE_CURRENT_SOURCE_DIR}/priv/unpack_userns_test.cpp)
pod_priv_libs(pod_cas_unpack pod_libarchive)
