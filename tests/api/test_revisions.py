"""The revision rows the gateway shows: images, what changed, which one is current."""

from __future__ import annotations

from pincompute.api.revisions import change, images, rows
from pincompute.model.wellknown import RESTARTED_AT_ANNOTATION


def _template(image: str, *, sidecar: str | None = None, token: str | None = None) -> dict:
    containers = [{"name": "main", "image": image}]
    if sidecar:
        containers.append({"name": "side", "image": sidecar})
    md = {"annotations": {RESTARTED_AT_ANNOTATION: token}} if token else {}
    return {"metadata": md, "spec": {"containers": containers,
                                     "initContainers": [{"name": "init", "image": "setup"}]}}


def test_images_list_init_containers_first() -> None:
    assert images(_template("web:1", sidecar="log:1")) == {
        "init": "setup", "main": "web:1", "side": "log:1"}
    assert images({}) == {}


def test_change_names_images_containers_and_restarts() -> None:
    assert change(None, _template("web:1")) == "created: init=setup, main=web:1"
    assert change(_template("web:1"), _template("web:2")) == "main: web:1 → web:2"
    assert change(_template("web:1"), _template("web:1", sidecar="log:1")) == "+side=log:1"
    assert change(_template("web:1", sidecar="log:1"), _template("web:1")) == "-side"
    assert change(_template("web:1"), _template("web:1", token="t1")) == "restart"
    same = _template("web:1")
    other = {**same, "spec": {**same["spec"], "nodeSelector": {"a": "b"}}}
    assert change(same, other) == "template changed"


def test_rows_mark_the_latest_current() -> None:
    history = [{"revision": "aaa", "number": 1, "time": "t1", "template": _template("web:1")},
               {"revision": "bbb", "number": 2, "time": "t2", "template": _template("web:2")}]
    got = rows(history)
    assert [(r["number"], r["revision"], r["created"], r["current"]) for r in got] == [
        (1, "aaa", "t1", False), (2, "bbb", "t2", True)]
    assert got[1]["change"] == "main: web:1 → web:2"
    assert rows([]) == []
