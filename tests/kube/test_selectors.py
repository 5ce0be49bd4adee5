import pytest

from pincompute.kube.errors import BadRequest
from pincompute.kube.selectors import (
    parse_field_selector,
    parse_label_selector,
    selector_from_dict,
)


@pytest.mark.parametrize(("text", "labels", "expected"), [
    ("app=web", {"app": "web"}, True),
    ("app==web", {"app": "web"}, True),
    ("app=web", {"app": "db"}, False),
    ("app!=web", {"app": "db"}, True),
    ("app!=web", {}, True),
    ("tier in (a, b)", {"tier": "b"}, True),
    ("tier in (a,b)", {"tier": "c"}, False),
    ("tier notin (a,b)", {"tier": "c"}, True),
    ("tier notin (a,b)", {}, True),
    ("app", {"app": ""}, True),
    ("app", {}, False),
    ("!app", {}, True),
    ("!app", {"app": "x"}, False),
    ("app=web,!canary,zone in (z1)", {"app": "web", "zone": "z1"}, True),
    ("app=web,!canary,zone in (z1)", {"app": "web", "zone": "z1", "canary": "1"}, False),
    ("example.com/team=search", {"example.com/team": "search"}, True),
    ("", {"x": "y"}, True),
])
def test_label_selector_matches(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_label_selector(text).matches(labels) is expected


@pytest.mark.parametrize("text", [
    "app=", "=web", "app in ()", "app in (a", "app=we b", "Bad Key=x", "app=web,",
    "a/b/c=x", "app=" + "x" * 64, "in (a)",
])
def test_unparseable_label_selectors_name_the_parameter(text: str) -> None:
    if text == "app=":
        # An empty value is legal in Kubernetes: it matches an empty label only.
        assert parse_label_selector(text).matches({"app": ""})
        assert not parse_label_selector(text).matches({})
        return
    with pytest.raises(BadRequest) as err:
        parse_label_selector(text)
    assert err.value.causes[0].field == "labelSelector"


def test_equality_terms_are_exposed_for_indexes() -> None:
    sel = parse_label_selector("app=web,tier in (x),zone in (a,b),!c")
    assert sel.equality_terms() == [("app", "web"), ("tier", "x")]


def test_structured_selector() -> None:
    sel = selector_from_dict({"matchLabels": {"app": "web"},
                              "matchExpressions": [{"key": "zone", "operator": "In",
                                                    "values": ["a", "b"]},
                                                   {"key": "canary", "operator": "DoesNotExist"}]})
    assert sel.matches({"app": "web", "zone": "a"})
    assert not sel.matches({"app": "web", "zone": "c"})
    assert not sel.matches({"app": "web", "zone": "a", "canary": "y"})


@pytest.mark.parametrize("spec", [
    {"matchExpressions": [{"key": "zone", "operator": "Near", "values": ["a"]}]},
    {"matchExpressions": [{"key": "zone", "operator": "In", "values": []}]},
    {"matchExpressions": [{"key": "zone", "operator": "Exists", "values": ["a"]}]},
    {"matchLabels": {"bad key": "x"}},
])
def test_bad_structured_selector(spec: dict) -> None:
    with pytest.raises(BadRequest) as err:
        selector_from_dict(spec, param="spec.selector")
    assert err.value.causes[0].field.startswith("spec.selector")


def test_field_selector() -> None:
    sel = parse_field_selector("metadata.name=a,spec.nodeName!=n1")
    assert sel.matches({"metadata": {"name": "a"}, "spec": {"nodeName": "n2"}})
    assert not sel.matches({"metadata": {"name": "a"}, "spec": {"nodeName": "n1"}})
    assert sel.value_of("metadata.name") == "a"
    assert sel.value_of("spec.nodeName") is None
    assert parse_field_selector("spec.replicas=3").matches({"spec": {"replicas": 3}})
    assert parse_field_selector("spec.paused=true").matches({"spec": {"paused": True}})
    with pytest.raises(BadRequest) as err:
        parse_field_selector("spec replicas=3")
    assert err.value.causes[0].field == "fieldSelector"
    with pytest.raises(BadRequest):
        parse_field_selector("metadata.name")
