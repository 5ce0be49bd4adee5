"""The kubernetes backend: the protocol over a real API server (via lightkube's config)."""

from typing import Any

from .client import KubeConfigError, KubernetesClient, config_from_text, load_config

__all__ = ["KubeConfigError", "KubernetesClient", "config_from_text", "connect", "load_config"]


def connect(kubeconfig: str | None = None, *, context: str | None = None,
            **options: Any) -> KubernetesClient:
    """A client for the cluster a kubeconfig names (None: in-cluster or the default file)."""
    return KubernetesClient.from_kubeconfig(kubeconfig, context=context, **options)
