pod_unit_test(subid_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/subid_test.cpp LIBS pod_idmap)
pod_priv_sources(${CMAKE_CURRENT_SOURCE_DIR}/priv/idmap_userns_test.cpp)
pod_priv_libs(pod_idmap)
