# cgroup v2 delegation for real (tests/vm/): this host's cgroups are hybrid, so the test
# boots Debian's kernel in qemu (TCG) on an initramfs built from this build's pod,
# pod-image and busybox image, and runs the isolator tests there as ordinary users.
add_test(NAME system.cgroup_v2_vm COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/vm/run-vm)
set_tests_properties(system.cgroup_v2_vm PROPERTIES
  ENVIRONMENT "POD=$<TARGET_FILE:pod>;POD_TESTS_DIR=${CMAKE_CURRENT_SOURCE_DIR};POD_DEFAULT_IMAGE=${POD_DEFAULT_IMAGE};POD_VM_DIR=${CMAKE_CURRENT_BINARY_DIR}/vm"
  SKIP_RETURN_CODE 77 RUN_SERIAL TRUE TIMEOUT 660)
