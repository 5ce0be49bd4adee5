"""Fixtures shared by every test tier."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Property tests generate their data on a machine that may be busy: a slow draw is the
# machine's, not a problem of the strategy (tests that set their own settings keep them).
settings.register_profile("pincompute", suppress_health_check=[HealthCheck.too_slow],
                          deadline=None)
settings.load_profile("pincompute")


@pytest.fixture
def region_dir() -> Iterator[Path]:
    """A data directory for a region whose node agents run pods as their own uids.

    pytest's ``tmp_path`` lives under a 0700 directory that another uid cannot
    pass through; this one's parent is traversable (0711), so the region keeps
    its nodes beside it (``data-nodes``, removed with it) instead of falling back
    to /var/lib/pincompute.
    """
    path = Path(tempfile.mkdtemp(prefix="pincompute-region-"))
    path.chmod(0o711)
    try:
        yield path / "data"
    finally:
        shutil.rmtree(path, ignore_errors=True)
