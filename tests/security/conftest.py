"""The attack tier: every isolation claim is tested by running the attack for real.

Attacks run against real process-runtime nodes (real processes, real uids, real
cgroups and namespaces), so most of them need root, as the node agent does in
production.  Without it a test asks for the ``as_root`` fixture and is skipped
loudly — except with ``CI=true``, where an attack that did not run is a failure:
an isolation claim nobody checked is not a claim.  The same holds for a kernel
feature a protection needs (``require``).
"""

from __future__ import annotations

import os

import pytest


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"attack not run under CI=true: {reason}")
    pytest.skip(reason)


def require(condition: bool, reason: str) -> None:
    """Skip (fail under ``CI=true``) unless ``condition``: what the attack needs."""
    if not condition:
        _unavailable(reason)


@pytest.fixture
def as_root() -> None:
    """The attack needs root (the node agent's production setting)."""
    require(os.geteuid() == 0, "the node agent's isolation needs root; run as root")
