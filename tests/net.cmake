# System tests of pod networking: the CNI bridge for root, slirp for ordinary users.
pod_system_test(net_root)
pod_system_test(net_rootless)
