"""PinCompute: a Kubernetes-backed regional Platform-as-a-Service."""

__version__ = "0.1.0"
