# sys/ tests: resolution inside a root (openat2 and the walk), file helpers, locks,
# child processes, errors. Unprivileged.
pod_unit_test(sys_test
  SOURCES unit/sys_resolve_test.cpp unit/sys_fs_test.cpp unit/sys_process_test.cpp unit/sys_mountinfo_test.cpp
  LIBS pod_sys)
