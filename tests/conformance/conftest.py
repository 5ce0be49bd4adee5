"""Fixtures of the conformance suite: one suite, every backend.

``PINCOMPUTE_TEST_BACKENDS`` (comma-separated, default ``embedded``) chooses the
backends; every test runs once per backend.  ``embedded`` is the persisted store;
modules that set ``ALSO_MEMORY = True`` also run on the memory-only store.
Each test gets a fresh client (``backend``/``client``) and its own Namespace (``ns``).

``kubernetes`` runs against the host cluster of the session's real-cluster
environment (``kube_env``, shared with ``tests/k8s``; see ``tests/kubeenv_fixture.py``),
or against the cluster ``$PINCOMPUTE_TEST_KUBECONFIG`` names.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from pincompute.kube import ApiError, KubeClient
from pincompute.kube.resource import NAMESPACES
from pincompute.kubeenv import KubeEnv
from tests.kubeenv_fixture import prepare_binaries, session_env, terminal_summary

from .backends import KUBECONFIG_ENV, Harness, make_harness, selected_backends

TEST_LABEL = "conformance.pincompute.io/suite"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "backend_options(**options): embedded store options for this test "
        "(history_size, watch_buffer, bookmark_interval)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = "kubernetes" in selected_backends() and not os.environ.get(KUBECONFIG_ENV) and any(
        "backend_name" in getattr(item, "fixturenames", ()) for item in items)
    prepare_binaries(config, wanted)


def pytest_terminal_summary(terminalreporter: object) -> None:
    terminal_summary(terminalreporter)


@pytest.fixture(scope="session")
def kube_env(request: pytest.FixtureRequest) -> Iterator[KubeEnv]:
    """The session's real clusters (the same environment tests/k8s uses)."""
    yield from session_env(request)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend_name" not in metafunc.fixturenames:
        return
    names = selected_backends()
    if ("embedded" in names and "embedded-memory" not in names
            and getattr(metafunc.module, "ALSO_MEMORY", False)):
        names = [*names, "embedded-memory"]
    metafunc.parametrize("backend_name", names)


@pytest.fixture
async def harness(backend_name: str, tmp_path: Path,
                  request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    kubeconfig: str | Path | None = None
    if backend_name == "kubernetes":
        kubeconfig = os.environ.get(KUBECONFIG_ENV) or \
            request.getfixturevalue("kube_env").host.kubeconfig
    h = make_harness(backend_name, tmp_path, kubeconfig=kubeconfig)
    yield h
    await h.stop()


@pytest.fixture
async def backend(harness: Harness, request: pytest.FixtureRequest) -> KubeClient:
    marker = request.node.get_closest_marker("backend_options")
    options = dict(marker.kwargs) if marker else {}
    return await harness.start(**options)


@pytest.fixture
def client(backend: KubeClient) -> KubeClient:
    return backend


@pytest.fixture
async def make_namespace(backend: KubeClient, harness: Harness
                         ) -> AsyncIterator[Callable[[], Awaitable[str]]]:
    created: list[str] = []

    async def make() -> str:
        name = f"conf-{secrets.token_hex(5)}"
        await backend.create(NAMESPACES, {
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {TEST_LABEL: "true"}},
        })
        created.append(name)
        await harness.namespace_ready(backend, name)
        return name

    yield make
    for name in created:
        with contextlib.suppress(ApiError):
            await backend.delete(NAMESPACES, name)


@pytest.fixture
async def ns(make_namespace: Callable[[], Awaitable[str]]) -> str:
    return await make_namespace()
