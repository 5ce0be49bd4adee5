"""The machine's registry of loopback address blocks: one owner per block, across regions.

Theory of operation
-------------------
Pods of the process runtime live on loopback addresses (:mod:`.network`), and
every ``127.x`` address is shared by the whole machine.  Nodes claim their
``/24`` blocks in their member cluster's store, which keeps the nodes of *one*
cluster apart — but two member clusters (of one region, or of two regions on
the same machine) each have a store of their own and would hand out the same
blocks: their pods would get the same addresses.

So each member cluster first claims a larger block (``/16`` by default: room
for 256 nodes) in a registry shared by the whole machine, and its nodes claim
their ``/24`` blocks inside it.  The registry is one JSON file,
``<state dir>/address-blocks.json`` (:func:`state_dir`: ``/var/lib/pincompute``
or ``$PINCOMPUTE_STATE_DIR``), changed only under an exclusive ``flock`` of a lock
file next to it and replaced atomically (write, fsync, rename), so concurrent
regions serialise and a crash never leaves half a registry.

A claim is keyed by its owner — the region's data directory — and the cluster's
name, so a region that restarts gets its blocks back and its nodes keep their
addresses.  A claim whose data directory no longer exists is stale: the next
claim removes it and its block is free again (:meth:`BlockRegistry.release`
frees one explicitly).  Claiming scans the claims (a handful per region) and
happens once per cluster at start, never on a pod's path.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_STATE_DIR = Path("/var/lib/pincompute")
STATE_DIR_ENV = "PINCOMPUTE_STATE_DIR"
CLUSTER_PREFIX = 16
_LOCALHOST = ipaddress.IPv4Address("127.0.0.1")


class BlocksExhausted(RuntimeError):
    """Every block of the pool is claimed by a live owner on this machine."""


@dataclass(frozen=True, slots=True)
class Claim:
    cidr: str
    owner: str
    """The owning region's data directory (absolute)."""
    cluster: str


def state_dir() -> Path:
    """Where machine-wide state lives: ``$PINCOMPUTE_STATE_DIR``, else /var/lib/pincompute.

    Without root that directory is not writable; the user's own state directory
    (``$XDG_STATE_HOME/pincompute``) serves instead — such regions have no
    isolation between their pods anyway (pods run as the agent's uid).
    """
    if os.environ.get(STATE_DIR_ENV):
        return Path(os.environ[STATE_DIR_ENV])
    if os.geteuid() == 0:
        return DEFAULT_STATE_DIR
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "pincompute"


class BlockRegistry:
    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory if directory is not None else state_dir()
        self.path = self.directory / "address-blocks.json"

    def claim(self, owner: Path, cluster: str, *, pool: str,
              prefix: int = CLUSTER_PREFIX) -> str:
        """The block of ``pool`` held by ``(owner, cluster)``, claimed now if it has none."""
        network = ipaddress.IPv4Network(pool)
        if prefix < network.prefixlen:
            raise ValueError(f"prefix /{prefix} is larger than the pool {pool}")
        key = str(owner.resolve())
        with self._locked() as claims:
            for c in claims:
                if (c.owner, c.cluster) == (key, cluster) and \
                        ipaddress.IPv4Network(c.cidr).subnet_of(network):
                    return c.cidr
            taken = [ipaddress.IPv4Network(c.cidr) for c in claims]
            for block in network.subnets(new_prefix=prefix):
                if _LOCALHOST in block or any(block.overlaps(t) for t in taken):
                    continue
                # A cluster holds one block per pool: a new pool replaces its old claim.
                claims[:] = [c for c in claims if (c.owner, c.cluster) != (key, cluster)]
                claims.append(Claim(str(block), key, cluster))
                return str(block)
        raise BlocksExhausted(f"every /{prefix} block of {pool} is claimed on this machine "
                              f"(see {self.path})")

    def release(self, owner: Path, cluster: str | None = None) -> None:
        """Free the blocks of ``owner`` (of one of its clusters, or all of them)."""
        key = str(owner.resolve())
        with self._locked() as claims:
            claims[:] = [c for c in claims
                         if c.owner != key or (cluster is not None and c.cluster != cluster)]

    def claims(self) -> list[Claim]:
        """The live claims (stale ones are dropped on the way)."""
        with self._locked() as claims:
            return list(claims)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[list[Claim]]:
        """The claims, under the lock; changes to the list are written back on exit."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o711)
        lock = os.open(self.directory / "address-blocks.lock",
                       os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            before = self._read()
            claims = [c for c in before if os.path.isdir(c.owner)]  # owner gone: stale
            yield claims
            if claims != before:
                self._write(claims)
        finally:
            os.close(lock)  # releases the flock

    def _read(self) -> list[Claim]:
        try:
            raw = json.loads(self.path.read_text())
            return [Claim(str(c["cidr"]), str(c["owner"]), str(c["cluster"]))
                    for c in raw["claims"]]
        except FileNotFoundError:
            return []
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise RuntimeError(f"the address block registry {self.path} is unreadable "
                               f"({exc!r}); move it away to start afresh") from exc

    def _write(self, claims: list[Claim]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"claims": [asdict(c) for c in claims]}, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


__all__ = ["CLUSTER_PREFIX", "DEFAULT_STATE_DIR", "STATE_DIR_ENV", "BlockRegistry",
           "BlocksExhausted", "Claim", "state_dir"]
