"""The machine's address block registry: unique blocks per (data dir, cluster), across
processes, stale claims freed when their data directory is gone."""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pincompute.node.blockregistry import (
    STATE_DIR_ENV,
    BlockRegistry,
    BlocksExhausted,
    Claim,
    state_dir,
)

POOL = "127.64.0.0/10"


@pytest.fixture
def registry(tmp_path: Path) -> BlockRegistry:
    return BlockRegistry(tmp_path / "state")


def region(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.mkdir()
    return path


def test_clusters_get_disjoint_blocks_and_keep_them(registry: BlockRegistry,
                                                    tmp_path: Path) -> None:
    one, two = region(tmp_path, "one"), region(tmp_path, "two")
    blocks = [registry.claim(owner, cluster, pool=POOL)
              for owner in (one, two) for cluster in ("zone-a-1", "zone-b-1")]
    nets = [ipaddress.IPv4Network(b) for b in blocks]
    assert all(n.prefixlen == 16 and n.subnet_of(ipaddress.IPv4Network(POOL)) for n in nets)
    assert not any(a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1:])
    # The same key gets the same block again (a restarted region keeps its addresses),
    # also through another spelling of the same directory.
    assert registry.claim(one / ".." / "one", "zone-b-1", pool=POOL) == blocks[1]
    assert BlockRegistry(registry.directory).claim(two, "zone-a-1", pool=POOL) == blocks[2]
    assert registry.path.stat().st_mode & 0o777 == 0o600


def test_a_claim_whose_data_directory_is_gone_is_freed(registry: BlockRegistry,
                                                       tmp_path: Path) -> None:
    gone = region(tmp_path, "gone")
    block = registry.claim(gone, "zone-a-1", pool=POOL)
    shutil.rmtree(gone)
    assert registry.claims() == []
    assert registry.claim(region(tmp_path, "next"), "zone-a-1", pool=POOL) == block


def test_release_frees_one_cluster_or_all(registry: BlockRegistry, tmp_path: Path) -> None:
    owner = region(tmp_path, "r")
    a = registry.claim(owner, "a", pool=POOL)
    b = registry.claim(owner, "b", pool=POOL)
    registry.release(owner, "a")
    assert [c.cidr for c in registry.claims()] == [b]
    assert registry.claim(region(tmp_path, "other"), "x", pool=POOL) == a
    registry.release(owner)
    assert [c.cluster for c in registry.claims()] == ["x"]


def test_overlapping_pools_and_sizes_never_share_addresses(registry: BlockRegistry,
                                                           tmp_path: Path) -> None:
    owner = region(tmp_path, "r")
    big = ipaddress.IPv4Network(registry.claim(owner, "member", pool=POOL))
    small = ipaddress.IPv4Network(registry.claim(owner, "lone-node", pool=POOL, prefix=24))
    assert not big.overlaps(small)
    # A cluster moved to another pool holds one block, in the new pool.
    moved = registry.claim(owner, "member", pool="127.128.0.0/12")
    assert ipaddress.IPv4Network(moved).subnet_of(ipaddress.IPv4Network("127.128.0.0/12"))
    assert sorted(c.cluster for c in registry.claims()) == ["lone-node", "member"]


def test_the_localhost_block_is_never_handed_out(registry: BlockRegistry,
                                                 tmp_path: Path) -> None:
    assert registry.claim(region(tmp_path, "r"), "a", pool="127.0.0.0/15") == "127.1.0.0/16"
    with pytest.raises(BlocksExhausted, match=re.escape("127.0.0.0/15")):
        registry.claim(region(tmp_path, "s"), "a", pool="127.0.0.0/15")
    with pytest.raises(ValueError, match="larger than the pool"):
        registry.claim(region(tmp_path, "t"), "a", pool="127.64.0.0/16", prefix=8)


def test_a_damaged_registry_is_reported_not_overwritten(registry: BlockRegistry,
                                                        tmp_path: Path) -> None:
    registry.directory.mkdir()
    registry.path.write_text("{not json")
    with pytest.raises(RuntimeError, match=re.escape("address-blocks.json is unreadable")):
        registry.claim(region(tmp_path, "r"), "a", pool=POOL)
    assert registry.path.read_text() == "{not json"


_CLAIM = """
import sys
from pathlib import Path
from pincompute.node.blockregistry import BlockRegistry
registry = BlockRegistry(Path(sys.argv[1]))
print(" ".join(registry.claim(Path(sys.argv[2]), f"c{i}", pool="127.64.0.0/10")
               for i in range(4)))
"""


def test_concurrent_regions_get_disjoint_blocks(registry: BlockRegistry,
                                                tmp_path: Path) -> None:
    owners = [region(tmp_path, f"r{i}") for i in range(4)]
    procs = [subprocess.Popen([sys.executable, "-c", _CLAIM, str(registry.directory), str(o)],
                              stdout=subprocess.PIPE, text=True) for o in owners]
    blocks = [b for p in procs for b in p.communicate(timeout=60)[0].split()]
    assert all(p.returncode == 0 for p in procs)
    assert len(blocks) == 16 and len(set(blocks)) == 16
    assert sorted(blocks) == sorted(c.cidr for c in registry.claims())
    assert all(isinstance(c, Claim) for c in registry.claims())


def test_state_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path))
    assert state_dir() == tmp_path
    assert BlockRegistry().path == tmp_path / "address-blocks.json"
