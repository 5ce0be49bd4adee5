"""Storage eviction: du without following links, sizeLimit messages, the disk reserve."""

from __future__ import annotations

import os
from pathlib import Path

from pincompute.node.eviction import (
    Candidate,
    StorageEviction,
    over_limit,
    tree_usage,
    volume_limits,
)


def write(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))


def test_usage_counts_blocks_once_and_never_follows_links(tmp_path: Path) -> None:
    vol = tmp_path / "vol"
    write(vol / "a" / "b" / "big", 1 << 20)
    os.link(vol / "a" / "b" / "big", vol / "hardlink")
    big_elsewhere = tmp_path / "elsewhere"
    write(big_elsewhere / "huge", 4 << 20)
    os.symlink(big_elsewhere, vol / "dirlink")
    os.symlink(big_elsewhere / "huge", vol / "filelink")
    used = tree_usage(vol)
    assert (1 << 20) <= used < (1 << 20) + 64 * 1024
    assert tree_usage(tmp_path / "missing") == 0


def test_usage_stops_counting_past_the_limit(tmp_path: Path) -> None:
    for i in range(50):
        write(tmp_path / f"d{i}" / "f", 64 * 1024)
    assert tree_usage(tmp_path, stop_above=100 * 1024) < tree_usage(tmp_path)


def pod(*volumes: dict) -> dict:
    return {"spec": {"volumes": list(volumes)}}


def test_limits_and_the_kubelet_message(tmp_path: Path) -> None:
    spec = pod({"name": "scratch", "emptyDir": {"sizeLimit": "1Ki"}},
               {"name": "logs", "logging": {"sizeLimit": "1Mi"}},
               {"name": "free", "emptyDir": {}},
               {"name": "bad", "emptyDir": {"sizeLimit": "lots"}})
    paths = {n: tmp_path / n for n in ("scratch", "logs", "free", "bad")}
    limits = volume_limits(spec, paths)
    assert [(v.volume, v.kind, v.limit) for v in limits] == [
        ("scratch", "EmptyDir", 1024), ("logs", "Logging", 1 << 20)]
    assert over_limit(limits) is None  # nothing written yet (directories missing)
    write(paths["scratch"] / "f", 64 * 1024)
    assert over_limit(limits) == 'Usage of EmptyDir volume "scratch" exceeds the limit "1Ki". '


def test_the_reserve_evicts_the_biggest_sandbox_and_sets_pressure(tmp_path: Path) -> None:
    small, big = tmp_path / "small", tmp_path / "big"
    write(small / "f", 4096)
    write(big / "f", 256 * 1024)
    candidates = [Candidate("s", pod(), {}, small), Candidate("b", pod(), {}, big)]
    roomy = StorageEviction(node_dirs=[tmp_path], reserve_bytes=0)
    assert roomy.check(candidates) == [] and roomy.pressure is None
    full = StorageEviction(node_dirs=[tmp_path], reserve_bytes=1 << 62)
    [(key, message)] = full.check(candidates)
    assert key == "b" and "ephemeral-storage" in message
    assert full.pressure is not None and "below the reserve" in full.pressure


def test_only_filesystems_the_pods_write_to_are_guarded(tmp_path: Path) -> None:
    guard = StorageEviction(node_dirs=[tmp_path], guarded=[tmp_path / "x", Path("/proc")])
    assert Path("/proc") not in guard.guarded


def test_a_logging_volume_is_rotated_before_its_pod_is_evicted(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    outside = tmp_path / "outside.log"
    write(outside, 64 * 1024)
    for i, name in enumerate(("app.log.2", "app.log.1", "app.log")):
        write(logs / name, 64 * 1024)
        os.utime(logs / name, (1000 + i, 1000 + i))
    os.symlink(outside, logs / "aaa-link.log")  # oldest by name; a link is never followed
    spec = pod({"name": "logs", "logging": {"sizeLimit": "100Ki"}})
    assert over_limit(volume_limits(spec, {"logs": logs})) is None
    assert sorted(p.name for p in logs.iterdir()) == ["aaa-link.log", "app.log"]
    assert outside.stat().st_size == 64 * 1024
    # One file, the newest, over the limit alone: nothing left to rotate, so evict.
    write(logs / "app.log", 256 * 1024)
    message = over_limit(volume_limits(spec, {"logs": logs}))
    assert message == 'Usage of Logging volume "logs" exceeds the limit "100Ki". '
    assert (logs / "app.log").exists()
