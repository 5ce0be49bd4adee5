"""The benchmark smoke tests reuse the real-cluster tier's binaries fixture."""

from tests.k8s.conftest import kube_bin  # noqa: F401 - a fixture, found by name
