"""The safe file-system primitives: names, normalised paths, and no link ever followed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pincompute.node import fsguard
from pincompute.node.fsguard import UnsafePath


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory outside the tree under test, with a file that must stay as it is."""
    d = tmp_path / "outside"
    d.mkdir()
    (d / "sentinel").write_text("keep")
    os.chmod(d / "sentinel", 0o640)
    return d


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    d = tmp_path / "tree"
    d.mkdir()
    return d


def untouched(outside: Path) -> bool:
    st = (outside / "sentinel").stat()
    return ((outside / "sentinel").read_text() == "keep" and stat.S_IMODE(st.st_mode) == 0o640
            and st.st_uid == os.geteuid() and sorted(os.listdir(outside)) == ["sentinel"])


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "/", "x\0y", None, 3])
def test_check_name_refuses_anything_but_one_component(name):
    with pytest.raises(UnsafePath):
        fsguard.check_name(name)


def test_check_name_accepts_a_component():
    assert fsguard.check_name("main") == "main"
    assert fsguard.check_name("..a") == "..a"


def test_relative_parts_normalises_and_refuses_dot_dot():
    assert fsguard.relative_parts("/var//db/./x/") == ("var", "db", "x")
    assert fsguard.relative_parts("/") == ()
    for bad in ("/../../etc", "a/../b", "..", "a/\0", None):
        with pytest.raises(UnsafePath):
            fsguard.relative_parts(bad)


def test_open_dir_refuses_a_link(tree, outside):
    (tree / "link").symlink_to(outside)
    (tree / "file").write_text("")
    with fsguard.opened_dir(tree) as fd:
        with pytest.raises(UnsafePath):
            fsguard.open_dir(fd, "link")
        with pytest.raises(UnsafePath):
            fsguard.open_dir(fd, "file")


def test_ensure_dir_replaces_a_planted_link_and_never_touches_its_target(tree, outside):
    (tree / "vol").symlink_to(outside)
    with fsguard.opened_dir(tree) as fd:
        os.close(fsguard.ensure_dir(fd, "vol", mode=0o705))
    assert not (tree / "vol").is_symlink() and (tree / "vol").is_dir()
    assert stat.S_IMODE((tree / "vol").stat().st_mode) == 0o705
    assert untouched(outside)


def test_ensure_dir_keeps_a_directory_of_an_allowed_owner_and_its_content(tree):
    (tree / "vol").mkdir()
    (tree / "vol" / "data").write_text("x")
    with fsguard.opened_dir(tree) as fd:
        os.close(fsguard.ensure_dir(fd, "vol", mode=0o700, owners=(os.geteuid(),)))
        assert (tree / "vol" / "data").read_text() == "x"
        os.close(fsguard.ensure_dir(fd, "vol", mode=0o700, owners=(os.geteuid() + 1,)))
    assert list((tree / "vol").iterdir()) == []  # someone else's: replaced


def test_remove_deletes_a_link_not_what_it_points_to(tree, outside):
    (tree / "link").symlink_to(outside)
    (tree / "d").mkdir()
    (tree / "d" / "inner").symlink_to(outside)
    with fsguard.opened_dir(tree) as fd:
        fsguard.remove(fd, "link")
        fsguard.remove(fd, "d")
        fsguard.remove(fd, "missing")
    assert os.listdir(tree) == []
    assert untouched(outside)


def test_make_dirs_creates_with_mode_and_refuses_links_on_the_way(tree, outside):
    with fsguard.opened_dir(tree) as fd:
        fds = fsguard.make_dirs(fd, ("a", "b"), mode=0o750)
        for f in fds:
            os.close(f)
        assert stat.S_IMODE((tree / "a" / "b").stat().st_mode) == 0o750
        (tree / "a" / "c").symlink_to(outside)
        with pytest.raises(UnsafePath):
            fsguard.make_dirs(fd, ("a", "c", "d"), mode=0o700)
        with pytest.raises(UnsafePath):
            fsguard.make_dirs(fd, ("a",), mode=0o700, owners=(os.geteuid() + 1,))
    assert untouched(outside)


def test_write_file_replaces_a_planted_link_instead_of_writing_through_it(tree, outside):
    (tree / "cfg").symlink_to(outside / "sentinel")
    with fsguard.opened_dir(tree) as fd:
        fsguard.write_file(fd, "cfg", b"value", mode=0o440)
    assert not (tree / "cfg").is_symlink()
    assert (tree / "cfg").read_text() == "value"
    assert stat.S_IMODE((tree / "cfg").stat().st_mode) == 0o440
    assert untouched(outside)


def test_symlink_replaces_a_directory(tree, outside):
    (tree / "m").mkdir()
    (tree / "m" / "f").write_text("")
    with fsguard.opened_dir(tree) as fd:
        fsguard.symlink(str(outside), fd, "m")
    assert os.readlink(tree / "m") == str(outside)
    assert untouched(outside)


@pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")
def test_chown_tree_moves_only_the_previous_owners_files_and_follows_no_link(tree, outside):
    old, new = 60_001, 60_002
    (tree / "sub").mkdir()
    (tree / "sub" / "f").write_text("")
    (tree / "link").symlink_to(outside)
    (tree / "rootfile").write_text("")
    for p in (tree, tree / "sub", tree / "sub" / "f"):
        os.chown(p, old, old)
    os.lchown(tree / "link", old, old)
    with fsguard.opened_dir(tree) as fd:
        fsguard.chown_tree(fd, new, new, only_from=old)
    for p in (tree, tree / "sub", tree / "sub" / "f"):
        assert (p.stat().st_uid, p.stat().st_gid) == (new, new)
    assert (tree / "link").lstat().st_uid == new
    assert (tree / "rootfile").stat().st_uid == 0  # not the previous owner's
    assert untouched(outside)
    assert outside.stat().st_uid == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")
def test_chown_tree_from_root_leaves_hard_linked_files(tree, outside):
    os.link(outside / "sentinel", tree / "hard")
    (tree / "own").write_text("")
    with fsguard.opened_dir(tree) as fd:
        fsguard.chown_tree(fd, 60_003, 60_003, only_from=0)
    assert (tree / "own").stat().st_uid == 60_003
    assert (outside / "sentinel").stat().st_uid == 0
    assert tree.stat().st_uid == 60_003


def test_chown_tree_refuses_a_tree_deeper_than_the_limit(tree):
    path = tree
    for _ in range(fsguard.MAX_DEPTH + 2):
        path = path / "d"
        path.mkdir()
    with fsguard.opened_dir(tree) as fd, pytest.raises(UnsafePath):
        fsguard.chown_tree(fd, os.geteuid(), os.getegid(), only_from=os.geteuid())
    with fsguard.opened_dir(tree.parent) as fd:
        fsguard.remove(fd, tree.name)  # removing it is fine
    assert not tree.exists()
