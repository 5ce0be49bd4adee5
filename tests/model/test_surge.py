"""Which nodes a rotation surges have a successor: the rule the provisioner and the
rotation both count with."""

from __future__ import annotations

import json
from typing import Any

from pincompute.model.surge import covered, surge_room, surge_since
from pincompute.model.wellknown import NODE_DRAIN_ANNOTATION, ROTATION_ANNOTATION


def node(name: str, *, since: float | None = None, surge: bool = True,
         leaving: bool = False) -> dict[str, Any]:
    annotations = {}
    if since is not None:
        annotations[ROTATION_ANNOTATION] = json.dumps({"rotation": "r", "since": since,
                                                       "surge": surge})
    if leaving:
        annotations[NODE_DRAIN_ANNOTATION] = "2026-11-30T00:00:00Z"
    return {"metadata": {"name": name, "annotations": annotations}}


def test_only_nodes_marked_to_surge_and_staying_count() -> None:
    assert surge_since(node("a", since=5.0)) == 5.0
    assert surge_since(node("b")) is None
    assert surge_since(node("c", since=5.0, surge=False)) is None  # node by node
    assert surge_since(node("d", since=5.0, leaving=True)) is None  # leaving: counts not
    broken = {"metadata": {"name": "e", "annotations": {ROTATION_ANNOTATION: "{"}}}
    assert surge_since(broken) is None


def test_the_first_marked_get_the_room_max_size_leaves() -> None:
    nodes = [node("n3", since=3.0), node("n1", since=1.0), node("n2", since=1.0),
             node("n4"), node("n5", since=0.5, surge=False)]
    assert covered(nodes, room=2) == ["n1", "n2"]  # first marked first; names settle ties
    assert covered(nodes, room=10) == ["n1", "n2", "n3"]
    assert covered(nodes, room=0) == []
    assert surge_room(target=30, min_size=0, max_size=33) == 3
    assert surge_room(target=30, min_size=30, max_size=30) == 0  # at its maximum
    assert surge_room(target=30, min_size=40, max_size=10) == 10  # maxSize below minSize
