# System tests of the image store (the pod image commands).
pod_system_test(import_formats)
pod_system_test(store_lifecycle)
pod_system_test(rootless_import)
