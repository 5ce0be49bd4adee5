"""The ``pincompute`` command."""
