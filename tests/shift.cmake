# shift/: map arithmetic, xattr rewriting and the journal (unit); the engine on a real
# tree (needs:root); `pod volume remap` end to end (system).
pod_unit_test(shift_test
  SOURCES unit/shift_map_test.cpp unit/shift_xattrs_test.cpp unit/shift_journal_test.cpp
  LIBS pod_shift)
pod_priv_sources(${CMAKE_CURRENT_SOURCE_DIR}/priv/shift_root_test.cpp
                  ${CMAKE_CURRENT_SOURCE_DIR}/priv/shift_cache_test.cpp)
pod_priv_libs(pod_shift)
pod_system_test(shift_remap)
