"""Reading the objects of ``apply -f`` / ``delete -f``: files, directories, stdin.

``-f`` takes a file (YAML, one or many ``---`` documents, or JSON), a directory
(its ``*.yaml``, ``*.yml`` and ``*.json`` files in name order, not recursing) or
``-`` for stdin.  A ``List`` document contributes its items.  Every document
must be a mapping with a ``kind`` and a ``metadata.name``; the first that is not
stops the command before anything is sent (nothing half-applied by a typo).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SUFFIXES = (".yaml", ".yml", ".json")


class ManifestError(ValueError):
    """A file that cannot be read, or a document that is not an object."""


@dataclass(frozen=True, slots=True)
class Manifest:
    source: str
    """``file.yaml#2`` (the document's position), for messages."""
    obj: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{str(self.obj['kind']).lower()}/{self.obj['metadata']['name']}"


def files(paths: Iterable[str]) -> list[tuple[str, str]]:
    """(name, text) of every file the ``-f`` arguments stand for."""
    out: list[tuple[str, str]] = []
    for arg in paths:
        if arg == "-":
            out.append(("<stdin>", sys.stdin.read()))
            continue
        path = Path(arg)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in SUFFIXES and p.is_file())
            if not found:
                raise ManifestError(f"{arg}: no .yaml, .yml or .json files in the directory")
            out.extend((str(p), _read(p)) for p in found)
        else:
            out.append((arg, _read(path)))
    return out


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        raise ManifestError(f"{path}: no such file or directory") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ManifestError(f"{path}: cannot read it ({e})") from None


def load(paths: Iterable[str]) -> list[Manifest]:
    """Every object of the ``-f`` arguments, in order."""
    out: list[Manifest] = []
    for name, text in files(paths):
        try:
            docs = [d for d in yaml.safe_load_all(text) if d is not None]
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark is not None else ""
            raise ManifestError(f"{name}: not valid YAML{where}: "
                                f"{getattr(e, 'problem', None) or e}") from None
        for i, doc in enumerate(docs, start=1):
            items = doc.get("items") if isinstance(doc, dict) and doc.get("kind") == "List" \
                else [doc]
            for obj in items or ():
                out.append(_checked(f"{name}#{i}", obj))
    if not out:
        raise ManifestError("no objects in " + ", ".join(paths))
    return out


def _checked(source: str, obj: Any) -> Manifest:
    if not isinstance(obj, dict):
        raise ManifestError(f"{source}: a document must be an object (a mapping), not "
                            f"{type(obj).__name__}")
    if not isinstance(obj.get("kind"), str) or not obj["kind"]:
        raise ManifestError(f"{source}: the object has no kind")
    md = obj.get("metadata")
    if not isinstance(md, dict) or not isinstance(md.get("name"), str) or not md["name"]:
        raise ManifestError(f"{source}: the {obj['kind']} has no metadata.name")
    return Manifest(source, obj)
