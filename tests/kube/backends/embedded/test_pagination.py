"""Continue tokens: opaque, round-tripping, and refused when malformed."""

from __future__ import annotations

import base64

import pytest

from pincompute.kube.backends.embedded.pagination import (
    decode_continue,
    encode_continue,
    key_of_item,
)
from pincompute.kube.errors import BadRequest
from pincompute.kube.resource import NODES, PODS


def test_tokens_round_trip_the_last_key_and_the_lists_resource_version() -> None:
    pod = {"metadata": {"name": "web-1", "namespace": "team-a"}}
    node = {"metadata": {"name": "n7"}}
    assert key_of_item(PODS, pod) == "team-a/web-1"
    assert key_of_item(NODES, node) == "n7"
    assert decode_continue(encode_continue(pod, 42, PODS)) == ("team-a/web-1", 42)
    assert decode_continue(encode_continue(node, 7, NODES)) == ("n7", 7)


@pytest.mark.parametrize("token", [
    "not base64 at all!",
    base64.urlsafe_b64encode(b"[1, 2]").decode(),
    base64.urlsafe_b64encode(b'{"start": "a"}').decode(),
    base64.urlsafe_b64encode(b'{"start": "a", "rv": "x"}').decode(),
    base64.urlsafe_b64encode(b"\xff\xfe").decode(),
])
def test_malformed_tokens_are_bad_requests(token: str) -> None:
    with pytest.raises(BadRequest):
        decode_continue(token)
