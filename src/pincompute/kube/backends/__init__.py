"""Backends of the ``pincompute.kube`` protocol."""
