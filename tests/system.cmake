# System tests owned by the malicious-archive work: hostile images must be refused
# with a clear error and leave everything outside the store untouched.
pod_system_test(malicious)
