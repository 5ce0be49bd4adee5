"""The work directory: files written with the right permissions, who owns it, and the
sweeping of directories whose owner was killed.

Theory of operation
-------------------
An environment keeps everything (per cluster: etcd data, certificates, kubeconfigs,
logs) in one work directory, either a new temporary one named ``pincompute-kubeenv-*``
or one the caller chose.  It records its owner in :data:`OWNER_FILE` — the owning
Python process and the pids of every process it started — and rewrites that record
after each start.  Each cluster directory carries :data:`CLUSTER_MARKER`, so a later
environment may replace a cluster directory it made but never a directory it did not.

On Linux every child dies with its parent (``PR_SET_PDEATHSIG``), so even a
``kill -9`` of the owner leaves no control plane running, but it does leave the
automatic work directory behind.  :func:`sweep_stale` (run at every start) removes
those whose owner is gone, first killing any recorded process group that survived —
only if that process's command line still names the directory, so a recycled pid is
never killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "AUTO_PREFIX", "CLUSTER_MARKER", "OWNER_FILE", "ClusterFiles", "sweep_stale", "write_file",
    "write_owner",
]

#: The owner record, at the top of the work directory.
OWNER_FILE = ".kubeenv.json"
#: The prefix of automatic (temporary) work directories, which alone are swept.
AUTO_PREFIX = "pincompute-kubeenv-"
#: The marker file of a cluster directory made by an environment.
CLUSTER_MARKER = ".kubeenv-cluster"


@dataclass(frozen=True, slots=True)
class ClusterFiles:
    """Where each file of a cluster lives in its directory ``root`` (work dir / name)."""

    root: Path

    @property
    def marker(self) -> Path:
        return self.root / CLUSTER_MARKER

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def ca_cert(self) -> Path:
        return self.pki / "ca.crt"

    @property
    def serving_cert(self) -> Path:
        return self.pki / "apiserver.crt"

    @property
    def serving_key(self) -> Path:
        return self.pki / "apiserver.key"

    @property
    def signing_key(self) -> Path:
        """The service-account token signing key (private)."""
        return self.pki / "sa.key"

    @property
    def signing_pub(self) -> Path:
        return self.pki / "sa.pub"

    @property
    def tokens(self) -> Path:
        return self.pki / "tokens.csv"

    @property
    def kubeconfig(self) -> Path:
        """The admin's kubeconfig."""
        return self.root / "kubeconfig"

    @property
    def kcm_kubeconfig(self) -> Path:
        return self.root / "kcm.kubeconfig"

    @property
    def kcm_certs(self) -> Path:
        return self.root / "kcm-certs"

    @property
    def kwok_kubeconfig(self) -> Path:
        return self.root / "kwok.kubeconfig"

    @property
    def kwok_stages(self) -> Path:
        return self.root / "kwok.yaml"

    @property
    def etcd_data(self) -> Path:
        return self.root / "etcd"

    @property
    def logs(self) -> Path:
        return self.root / "logs"


def write_file(path: Path, data: bytes, *, private: bool = False) -> None:
    """Write ``data`` to ``path`` (parents made), mode 0600 if ``private`` else 0644."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def write_owner(work_dir: Path, pids: Iterable[int]) -> None:
    """Record this process as the owner of ``work_dir`` and ``pids`` as what it started."""
    write_file(work_dir / OWNER_FILE, json.dumps({
        "owner_pid": os.getpid(), "pids": list(pids)}).encode())


def sweep_stale(root: Path | None = None) -> list[Path]:
    """Remove automatic work directories whose owning process is gone (after a ``kill -9``),
    killing any of their processes that survived; returns what was removed."""
    base = Path(root) if root is not None else Path(tempfile.gettempdir())
    removed = []
    for d in base.glob(f"{AUTO_PREFIX}*"):
        owner = d / OWNER_FILE
        try:
            info = json.loads(owner.read_text())
            owner_pid = int(info["owner_pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if owner_pid == os.getpid() or _alive(owner_pid):
            continue
        for pid in info.get("pids") or ():
            if _cmdline_mentions(int(pid), str(d)):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(int(pid), signal.SIGKILL)
        shutil.rmtree(d, ignore_errors=True)
        removed.append(d)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _cmdline_mentions(pid: int, text: str) -> bool:
    try:
        return text.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
