"""Finding (and, if need be, building) the upstream Kubernetes binaries.

Theory of operation
-------------------
An environment runs four binaries (:data:`BINARIES`) that ``tools/build-kube.sh``
builds from pinned Go modules into a per-version cache directory.
:func:`find_binaries` takes ``$PINCOMPUTE_KUBE_BIN`` if set (it must hold all four,
executable), else asks ``tools/build-kube.sh --check``, which prints the cache
directory when it is complete.  The repository root holding the script is found by
walking up from this file, then from the working directory, so both an editable
install and a run from a checkout find it.  When nothing is built yet and ``go`` is on
``PATH`` it runs the build (idempotent; the first build takes about ten minutes);
without Go it raises :class:`KubeBinariesMissing`, which the test tier turns into a
loud skip (a failure under ``CI=true``).  A failed build raises :class:`KubeEnvError`
with the tail of the build's log.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import LOG_TAIL_LINES, KubeBinariesMissing, KubeEnvError

__all__ = ["BINARIES", "BUILD_SCRIPT", "KUBE_BIN_ENV", "find_binaries", "missing_binaries"]

#: Environment variable naming a directory of ready binaries (skips build-kube.sh).
KUBE_BIN_ENV = "PINCOMPUTE_KUBE_BIN"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kwok")
#: The build script, relative to the repository root.
BUILD_SCRIPT = Path("tools") / "build-kube.sh"


def missing_binaries(directory: Path) -> list[str]:
    """The names of :data:`BINARIES` that are not executable files in ``directory``."""
    return [b for b in BINARIES if not os.access(directory / b, os.X_OK)]


def _repo_root(start: Path | None = None) -> Path | None:
    candidates = [Path(__file__).resolve().parent, Path.cwd().resolve()]
    if start is not None:
        candidates.insert(0, start.resolve())
    for base in candidates:
        for directory in (base, *base.parents):
            if (directory / BUILD_SCRIPT).is_file():
                return directory
    return None


def find_binaries(*, build: bool = True, repo_root: Path | None = None,
                  on_build: Callable[[str], None] | None = None) -> Path:
    """The directory holding etcd, kube-apiserver, kube-controller-manager and kwok.

    ``$PINCOMPUTE_KUBE_BIN`` wins; otherwise ``tools/build-kube.sh --check`` is asked,
    and when nothing is built yet and ``build`` is true the binaries are built (this
    blocks for minutes the first time; ``on_build`` is told before it starts).

    Raises :class:`KubeBinariesMissing` when they are absent and Go is not installed
    (or ``build`` is false), :class:`KubeEnvError` when a build fails or
    ``$PINCOMPUTE_KUBE_BIN`` names an incomplete directory.
    """
    explicit = os.environ.get(KUBE_BIN_ENV)
    if explicit:
        directory = Path(explicit).expanduser()
        missing = missing_binaries(directory)
        if missing:
            raise KubeEnvError(f"${KUBE_BIN_ENV}={explicit} lacks executable "
                               f"{', '.join(missing)}; unset it to use tools/build-kube.sh")
        return directory
    root = _repo_root(repo_root)
    if root is None:
        raise KubeBinariesMissing(
            f"cannot find {BUILD_SCRIPT} (searched from {Path(__file__).parent} and "
            f"{Path.cwd()}); run from a PinCompute checkout or set ${KUBE_BIN_ENV} to a "
            "directory holding " + ", ".join(BINARIES))
    script = root / BUILD_SCRIPT
    check = subprocess.run(["bash", str(script), "--check"], capture_output=True, text=True,
                           check=False, timeout=60)
    if check.returncode == 0 and check.stdout.strip():
        return Path(check.stdout.strip().splitlines()[-1])
    if not build:
        raise KubeBinariesMissing(f"Kubernetes test binaries are not built: "
                                  f"{check.stderr.strip()}; run {script}")
    if shutil.which("go") is None:
        raise KubeBinariesMissing(
            "Kubernetes test binaries are not built and Go is not installed, so they cannot "
            f"be: install Go (see tools/*/go.mod for the version) and run {script}, or set "
            f"${KUBE_BIN_ENV} to a directory holding {', '.join(BINARIES)}")
    if on_build is not None:
        on_build(f"building Kubernetes test binaries with {script} (first time: ~10 minutes)")
    with tempfile.TemporaryFile("w+") as log:
        done = subprocess.run(["bash", str(script)], stdout=subprocess.PIPE, stderr=log,
                              text=True, check=False)
        log.seek(0)
        tail = "".join(log.readlines()[-LOG_TAIL_LINES:])
    if done.returncode != 0 or not done.stdout.strip():
        raise KubeEnvError(f"{script} failed (exit {done.returncode}):\n{tail}")
    directory = Path(done.stdout.strip().splitlines()[-1])
    missing = missing_binaries(directory)
    if missing:
        raise KubeEnvError(f"{script} printed {directory} but it lacks {', '.join(missing)}")
    return directory
