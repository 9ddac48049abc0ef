# overlay/: compose, flatten and the probes (needs:root, needs:userns); the probe
# cache's JSON (unit); `pod doctor` end to end (system).
pod_unit_test(overlay_test SOURCES unit/overlay_probe_json_test.cpp LIBS pod_overlay)
pod_priv_sources(${CMAKE_CURRENT_SOURCE_DIR}/priv/overlay_compose_test.cpp
                 ${CMAKE_CURRENT_SOURCE_DIR}/priv/overlay_flatten_test.cpp
                 ${CMAKE_CURRENT_SOURCE_DIR}/priv/overlay_probe_test.cpp)
pod_priv_libs(pod_overlay pod_idmap)
pod_system_test(doctor)
