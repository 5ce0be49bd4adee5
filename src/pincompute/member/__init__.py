"""Member-cluster side: the operators that run workloads and node pools in one zone."""
