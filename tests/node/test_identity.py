"""Pod uids: unique on the machine, persisted per node, quarantined before reuse."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pincompute.node.identity import UidAllocator, UidExhausted, disown, uid_has_processes


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def allocator(tmp_path: Path, clock: Clock, *, node: str = "n1", count: int = 3,
              quarantine: float = 60.0, busy: frozenset[int] = frozenset(),
              state: bool = True) -> UidAllocator:
    return UidAllocator(node=node, registry=tmp_path / "uids", first=1000, count=count,
                        state=tmp_path / f"{node}.state" if state else None,
                        quarantine=quarantine, clock=clock, in_use=busy.__contains__)


def test_a_restarted_allocator_continues_where_it_stopped(tmp_path: Path) -> None:
    clock = Clock()
    first = allocator(tmp_path, clock, count=10)
    assert [first.allocate(p) for p in ("a", "b")] == [1000, 1001]
    first.release("a")
    first.release("b")
    again = allocator(tmp_path, clock, count=10)
    assert again.allocate("c") == 1002  # not 1000 again: a's data may still carry 1000


def test_the_state_file_is_root_only(tmp_path: Path) -> None:
    a = allocator(tmp_path, Clock())
    a.allocate("a")
    assert (tmp_path / "n1.state").stat().st_mode & 0o777 == 0o600


def test_a_released_uid_waits_out_its_quarantine(tmp_path: Path) -> None:
    clock = Clock()
    a = allocator(tmp_path, clock, count=1)
    assert a.allocate("a") == 1000
    a.release("a")
    with pytest.raises(UidExhausted):
        a.allocate("b")
    clock.now += 61
    assert a.allocate("b") == 1000


def test_a_uid_with_a_process_left_is_not_reused(tmp_path: Path) -> None:
    clock = Clock()
    a = allocator(tmp_path, clock, count=1, busy=frozenset({1000}))
    a.allocate("a")
    a.release("a")
    clock.now += 3600
    with pytest.raises(UidExhausted):
        a.allocate("b")


def test_the_quarantine_holds_for_other_nodes_of_the_machine(tmp_path: Path) -> None:
    clock = Clock()
    n1 = allocator(tmp_path, clock, count=2)
    n2 = allocator(tmp_path, clock, node="n2", count=2)
    assert n1.allocate("a") == 1000
    n1.release("a")
    assert n2.allocate("b") == 1001
    with pytest.raises(UidExhausted):
        n2.allocate("c")


def test_the_quarantine_survives_an_emptied_registry(tmp_path: Path) -> None:
    """A reboot empties /run; the node's state file still remembers the quarantine."""
    clock = Clock()
    a = allocator(tmp_path, clock, count=1)
    a.allocate("a")
    a.release("a")
    for f in (tmp_path / "uids").iterdir():
        f.unlink()
    again = allocator(tmp_path, clock, count=1)
    with pytest.raises(UidExhausted):
        again.allocate("b")
    clock.now += 61
    assert again.allocate("b") == 1000


def test_quarantined_entries_are_not_adopted_after_a_restart(tmp_path: Path) -> None:
    clock = Clock()
    a = allocator(tmp_path, clock, count=5)
    a.allocate("held")
    a.allocate("gone")
    a.release("gone")
    assert allocator(tmp_path, clock, count=5).owned_by() == {"held": 1000}


def test_uid_has_processes_sees_our_own_uid() -> None:
    assert uid_has_processes(os.getuid())
    assert not uid_has_processes(2_999_999)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_disown_hands_the_tree_to_root_without_following_links(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_text("host file")
    os.chown(outside, 4242, 4242)
    vol = tmp_path / "vol"
    (vol / "sub").mkdir(parents=True)
    (vol / "sub" / "data").write_text("x")
    (vol / "link").symlink_to(outside)
    (vol / "sub" / "dirlink").symlink_to(tmp_path, target_is_directory=True)
    for p in (vol, vol / "sub", vol / "sub" / "data"):
        os.chown(p, 200_123, 200_123)
    os.lchown(vol / "link", 200_123, 200_123)
    disown(vol)
    for p in (vol, vol / "sub", vol / "sub" / "data", vol / "link"):
        st = os.lstat(p)
        assert (st.st_uid, st.st_gid) == (0, 0), p
    assert vol.stat().st_mode & 0o777 == 0o700
    assert (outside.stat().st_uid, outside.read_text()) == (4242, "host file")
    link_to_vol = tmp_path / "vol-link"
    link_to_vol.symlink_to(outside)
    disown(link_to_vol)  # a link at the top is refused, its target untouched
    assert outside.stat().st_uid == 4242
