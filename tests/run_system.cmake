# System tests of pod run and the pod lifecycle.
pod_system_test(run_root)
pod_system_test(run_rootless)
pod_system_test(disk_space)
