"""The real-cluster environment of a test session, shared by tests/k8s and tests/conformance.

One :class:`~pincompute.kubeenv.KubeEnv` (a host and two member clusters, see
:func:`~pincompute.kubeenv.default_clusters`) serves the whole session, however
many conftests ask for it: each conftest defines a session-scoped ``kube_env``
fixture that delegates to :func:`session_env`, which starts the environment on
first use, counts its users and stops it when the last one is torn down (at the
end of the session).

Why a synchronous fixture: the environment runs in a :class:`~pincompute.kubeenv.KubeEnvThread`
(its own event loop in a thread), so it does not care which event loop a test
runs in: the suites keep pytest-asyncio's function-scoped loops and make a client
per test with ``cluster.client()``.

Binaries: :func:`prepare_binaries` (called from ``pytest_collection_modifyitems``,
outside any test's timeout) finds them and, the first time on a machine with Go,
builds them (~10 minutes).  Without Go the tier is skipped with a loud banner —
unless ``CI=true``, where a skipped tier is a failure.

``PINCOMPUTE_KUBE_ENV_KEEP=1`` keeps the work directory (logs, kubeconfigs, etcd
data) after the session; its path is printed in the terminal summary.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pincompute.kubeenv import (
    KubeBinariesMissing,
    KubeEnv,
    KubeEnvError,
    KubeEnvThread,
    default_clusters,
    find_binaries,
)

KEEP_ENV = "PINCOMPUTE_KUBE_ENV_KEEP"
#: Start-up budget of the session environment (three clusters start in seconds).
STARTUP_TIMEOUT = 90.0

_lock = threading.Lock()
_binaries: Path | KubeEnvError | None = None
_runner: KubeEnvThread | None = None
_failure: BaseException | None = None
_users = 0
_banner_shown = False
_kept: Path | None = None
_summary_done = False
_started: list[str] = []


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def _reporter(config: pytest.Config | None) -> object | None:
    return config.pluginmanager.get_plugin("terminalreporter") if config is not None else None


def _say(config: pytest.Config | None, message: str, **markup: bool) -> None:
    """A line on the terminal now, even from inside a fixture (where output is captured)."""
    reporter = _reporter(config)
    if reporter is None or config is None:
        return
    capture = config.pluginmanager.get_plugin("capturemanager")
    with (capture.global_and_fixture_disabled() if capture is not None
          else contextlib.nullcontext()):
        reporter.write_line(message, **markup)  # type: ignore[attr-defined]


def _skip_banner(reason: str) -> str:
    bar = "!" * 100
    return (f"{bar}\n!!! REAL-CLUSTER TESTS SKIPPED (tests/k8s, conformance on 'kubernetes'):\n"
            f"!!! {reason}\n{bar}")


def resolve_binaries(config: pytest.Config | None = None) -> Path:
    """The binaries' directory, found (or built) once per session; errors are memoised."""
    global _binaries
    with _lock:
        if _binaries is None:
            try:
                _binaries = find_binaries(
                    build=True, on_build=lambda msg: _say(config, f"pincompute: {msg}",
                                                          yellow=True, bold=True))
            except KubeEnvError as e:
                _binaries = e
        if isinstance(_binaries, KubeEnvError):
            raise _binaries
        return _binaries


def prepare_binaries(config: pytest.Config, wanted: bool) -> None:
    """At collection time: make sure the binaries exist (building them if need be) so
    that no test's timeout pays for a build; shout if the tier will be skipped."""
    global _banner_shown
    if not wanted:
        return
    try:
        resolve_binaries(config)
    except KubeBinariesMissing as e:
        if not _banner_shown and not in_ci():
            _banner_shown = True
            _say(config, _skip_banner(str(e)), red=True, bold=True)
    except KubeEnvError:
        pass  # reported by the fixture, as an error of each test that needs it


def binaries_or_skip(config: pytest.Config) -> Path:
    try:
        return resolve_binaries(config)
    except KubeBinariesMissing as e:
        if in_ci():
            pytest.fail(f"real-cluster tests cannot run: {e}.  CI=true, where skipping this "
                        "tier is a failure.", pytrace=False)
        pytest.skip(f"REAL-CLUSTER TIER SKIPPED: {e}")


def session_env(request: pytest.FixtureRequest) -> Iterator[KubeEnv]:
    """Body of every conftest's session-scoped ``kube_env`` fixture."""
    global _runner, _failure, _users, _kept
    bin_dir = binaries_or_skip(request.config)
    with _lock:
        if _failure is not None:
            raise _failure
        if _runner is None:
            keep = os.environ.get(KEEP_ENV) == "1"
            runner = KubeEnvThread(KubeEnv(clusters=default_clusters(members=2), bin_dir=bin_dir,
                                           keep=keep, startup_timeout=STARTUP_TIMEOUT))
            try:
                runner.start()
            except BaseException as e:
                _failure = e
                raise
            _runner = runner
            if keep:
                _kept = runner.env.work_dir
            _started.append(f"pincompute: real clusters {', '.join(runner.env.clusters)} up in "
                            f"{runner.env.startup_seconds:.1f}s in {runner.env.work_dir}")
            _say(request.config, "\n" + _started[-1], cyan=True)
        _users += 1
        env = _runner.env
    try:
        yield env
    finally:
        with _lock:
            _users -= 1
            if _users == 0 and _runner is not None:
                runner, _runner = _runner, None
                runner.stop()


def terminal_summary(terminalreporter: object) -> None:
    """Repeat the skip banner at the end of the run, and where kept logs are (once, even
    when two conftests call this)."""
    global _summary_done
    if _summary_done:
        return
    _summary_done = True
    if isinstance(_binaries, KubeBinariesMissing) and not in_ci() and _banner_shown:
        terminalreporter.write_line(_skip_banner(str(_binaries)),  # type: ignore[attr-defined]
                                    red=True, bold=True)
    for line in _started:
        terminalreporter.write_line(line)  # type: ignore[attr-defined]
    if _kept is not None:
        terminalreporter.write_line(  # type: ignore[attr-defined]
            f"pincompute: real-cluster work directory kept: {_kept}")
