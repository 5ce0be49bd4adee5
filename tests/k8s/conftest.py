"""Fixtures of the real-cluster tier: ``kube_env``, one environment for the session.

``kube_env`` is synchronous and session-scoped: the clusters run on their own event
loop in a thread (:class:`pincompute.kubeenv.KubeEnvThread`), so async tests keep
their function-scoped loops and make a client per test (``cluster.client()``,
closed by the test).  The same environment serves ``tests/conformance`` (see
``tests/kubeenv_fixture.py``).  Without binaries and without Go the tier is
skipped loudly; with ``CI=true`` that is a failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pincompute.kubeenv import KubeEnv
from tests.kubeenv_fixture import binaries_or_skip, prepare_binaries, session_env, terminal_summary

NEEDS_BINARIES = frozenset({"kube_env", "kube_bin"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    prepare_binaries(config, any(NEEDS_BINARIES.intersection(getattr(item, "fixturenames", ()))
                                 for item in items))


def pytest_terminal_summary(terminalreporter: object) -> None:
    terminal_summary(terminalreporter)


@pytest.fixture(scope="session")
def kube_env(request: pytest.FixtureRequest) -> Iterator[KubeEnv]:
    yield from session_env(request)


@pytest.fixture(scope="session")
def kube_bin(request: pytest.FixtureRequest) -> Path:
    """The binaries' directory, for tests that start environments of their own."""
    return binaries_or_skip(request.config)
