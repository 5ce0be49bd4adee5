"""What the audit records name from a route template."""

from __future__ import annotations

from pincompute.api.middleware import object_of


def test_object_of_a_route() -> None:
    p = "/api/v1/projects/{project}"
    assert object_of(f"{p}/pinapps/{{name}}", {"name": "web"}) == ("pinapps", "web")
    assert object_of(f"{p}/pinapps/{{name}}/scale", {"name": "web"}) == ("pinapps", "web")
    assert object_of(f"{p}/pinapps", {}) == ("pinapps", None)
    assert object_of("/api/v1/projects", {}) == ("projects", None)
    assert object_of(f"{p}/members/{{user}}", {"user": "bob"}) == ("members", None)
    assert object_of("/api/v1/tokens/{token_id}", {}) == ("tokens", None)
    assert object_of("unmatched", {}) == ("unmatched", None)
