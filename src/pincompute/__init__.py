"""PinCompute: a Kubernetes-backed regional Platform-as-a-Service."""
