"""Config volumes replaced atomically: the ``..data`` link swap, keys coming and going, and a
reader that never sees a torn or mixed version while the volume is rewritten."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from pincompute.node import configvolume, fsguard
from pincompute.node.configvolume import DATA, ConfigVolumeError, files_of, write


def _write(parent: Path, files: dict[str, str], *, uid: int | None = None, gid: int = -1,
           name: str = "cfg") -> Path:
    with fsguard.opened_dir(parent) as fd:
        write(fd, name, {tuple(k.split("/")): v.encode() for k, v in files.items()},
              uid=uid, gid=gid)
    return parent / name


def test_keys_are_links_through_data_to_one_version(tmp_path: Path) -> None:
    vol = _write(tmp_path, {"a": "1", "b": "2"})
    assert (vol / "a").read_text() == "1" and (vol / "b").read_text() == "2"
    assert os.readlink(vol / "a") == f"{DATA}/a"
    version = os.readlink(vol / DATA)
    assert version.startswith("..") and (vol / version / "a").is_file()
    assert sorted(p.name for p in vol.iterdir()) == sorted([DATA, version, "a", "b"])


def test_an_update_swaps_versions_and_drops_keys_that_went(tmp_path: Path) -> None:
    vol = _write(tmp_path, {"a": "1", "b": "2"})
    first = os.readlink(vol / DATA)
    _write(tmp_path, {"a": "one", "c/d": "nested"})
    second = os.readlink(vol / DATA)
    assert second != first and not (vol / first).exists()
    assert (vol / "a").read_text() == "one" and (vol / "c" / "d").read_text() == "nested"
    assert not (vol / "b").exists() and not (vol / "b").is_symlink()
    assert sorted(p.name for p in vol.iterdir()) == sorted([DATA, second, "a", "c"])


def test_leftovers_of_an_interrupted_write_are_removed(tmp_path: Path) -> None:
    vol = _write(tmp_path, {"a": "1"})
    (vol / "..2000_01_01_00_00_00.000000001").mkdir()
    os.symlink("..nowhere", vol / "..data_tmp")
    _write(tmp_path, {"a": "2"})
    names = {p.name for p in vol.iterdir()}
    assert names == {DATA, os.readlink(vol / DATA), "a"}


def test_a_link_standing_where_the_volume_goes_is_replaced_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "cfg").symlink_to(target)
    _write(tmp_path, {"a": "1"})
    assert not (tmp_path / "cfg").is_symlink() and list(target.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="ownership needs root")
def test_as_root_the_volume_is_roots_and_readable_by_the_pods_group(tmp_path: Path) -> None:
    vol = _write(tmp_path, {"a": "1"}, uid=12345, gid=12345)
    for path in (vol, vol / os.readlink(vol / DATA)):
        st = path.lstat()
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 12345, 0o750)
    st = (vol / "a").stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 12345, 0o440)


def test_items_select_and_rename_keys_and_hostile_paths_are_refused() -> None:
    data = {"a": "1", "b": "2"}
    assert files_of(data, None) == {("a",): b"1", ("b",): b"2"}
    assert files_of(data, [{"key": "a", "path": "x/y"}]) == {("x", "y"): b"1"}
    for path in ("../x", "", "..data", "..2020/x"):
        with pytest.raises(ConfigVolumeError):
            files_of(data, [{"key": "a", "path": path}])


def test_a_reader_never_sees_a_torn_or_mixed_version(tmp_path: Path) -> None:
    """Rewrite two 256 KiB keys 200 times while a thread reads them: every read is one
    whole version (one repeated digit, full length), never half of one."""
    size = 256 * 1024
    _write(tmp_path, {"a": "0" * size, "b": "0" * size})
    stop = threading.Event()
    seen: set[str] = set()
    bad: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            for key in ("a", "b"):
                try:
                    text = (tmp_path / "cfg" / key).read_text()
                except FileNotFoundError:
                    continue  # between the swap and the lookup: retried, never torn
                if len(text) != size or len(set(text)) != 1:
                    bad.append(f"{key}: {len(text)} bytes, {sorted(set(text))[:3]}")
                seen.add(text[0])

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(200):
            digit = str(i % 10)
            _write(tmp_path, {"a": digit * size, "b": digit * size})
    finally:
        stop.set()
        thread.join()
    assert bad == []
    assert len(seen) > 1


def test_version_names_sort_by_time() -> None:
    first = configvolume._version_name()
    assert first.startswith("..") and configvolume._version_name() >= first
