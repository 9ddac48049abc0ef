pod_unit_test(oci_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/oci_test.cpp LIBS pod_cas_model)
