"""``-f``: files, multi-document YAML, directories, Lists; bad input stops everything."""

from __future__ import annotations

from pathlib import Path

import pytest

from pincompute.cli.manifests import ManifestError, load

ROOT = Path(__file__).resolve().parents[2]


def test_directories_and_multi_document_files(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text("kind: PinApp\nmetadata: {name: b}\n---\n---\n"
                                     "kind: PinJob\nmetadata: {name: c}\n")
    (tmp_path / "a.json").write_text('{"kind": "List", "items": [{"kind": "PinPod", '
                                     '"metadata": {"name": "a"}}]}')
    (tmp_path / "notes.txt").write_text("ignored")
    assert [m.label for m in load([str(tmp_path)])] == ["pinpod/a", "pinapp/b", "pinjob/c"]
    assert [m.label for m in load([str(ROOT / "examples" / "hello-app.yaml")])] == [
        "pinapp/hello"]


@pytest.mark.parametrize(("text", "message"), [
    ("kind: PinApp\nmetadata: {name: x}\n---\n- just a list\n", "#2: a document must be"),
    ("metadata: {name: x}\n", "has no kind"),
    ("kind: PinApp\nmetadata: {}\n", "has no metadata.name"),
    ("kind: PinApp\n  bad: [\n", "not valid YAML"),
])
def test_bad_documents_are_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(text)
    with pytest.raises(ManifestError, match=message):
        load([str(path)])


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no such file"):
        load([str(tmp_path / "nope.yaml")])
