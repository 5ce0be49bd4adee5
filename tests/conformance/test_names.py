"""Object names, generateName, and label/annotation syntax."""

from __future__ import annotations

import pytest

from pincompute.kube import Invalid
from pincompute.kube.resource import NAMESPACES

from .helpers import CONFIGMAPS, WIDGETS, assert_invalid, configmap, names, widget

BAD_NAMES = [
    pytest.param("Upper", id="uppercase"),
    pytest.param("under_score", id="underscore"),
    pytest.param("-leading-dash", id="leading-dash"),
    pytest.param("trailing-dash-", id="trailing-dash"),
    pytest.param("a" * 254, id="too-long"),
    pytest.param("has space", id="space"),
    pytest.param("slash/inside", id="slash"),
]


async def test_generate_name(client, ns):
    a = await client.create(CONFIGMAPS, configmap(None, ns, generate_name="gen-"))
    b = await client.create(CONFIGMAPS, configmap(None, ns, generate_name="gen-"))
    for o in (a, b):
        name = o["metadata"]["name"]
        assert name.startswith("gen-") and len(name) > len("gen-")
        assert o["metadata"].get("generateName") == "gen-"
    assert a["metadata"]["name"] != b["metadata"]["name"]
    got = await client.get(CONFIGMAPS, a["metadata"]["name"], namespace=ns)
    assert got["metadata"]["uid"] == a["metadata"]["uid"]

    w = await client.create(WIDGETS, widget(None, ns, generate_name="widget-"))
    assert w["metadata"]["name"].startswith("widget-")


async def test_name_wins_over_generate_name(client, ns):
    obj = configmap("fixed", ns, generate_name="gen-")
    created = await client.create(CONFIGMAPS, obj)
    assert created["metadata"]["name"] == "fixed"


@pytest.mark.parametrize("bad", BAD_NAMES)
async def test_invalid_names_are_rejected(client, ns, bad):
    with pytest.raises(Invalid) as exc:
        await client.create(CONFIGMAPS, configmap(bad, ns))
    assert_invalid(exc, "metadata.name")
    with pytest.raises(Invalid) as exc:
        await client.create(WIDGETS, widget(bad, ns))
    assert_invalid(exc, "metadata.name")
    assert names((await client.list(CONFIGMAPS, namespace=ns)).items) == []
    assert names((await client.list(WIDGETS, namespace=ns)).items) == []


async def test_missing_name_is_rejected(client, ns):
    with pytest.raises(Invalid) as exc:
        await client.create(CONFIGMAPS, configmap(None, ns))
    assert_invalid(exc, "metadata.name")


async def test_long_and_dotted_names_that_are_valid(client, ns):
    # Most kinds take DNS-1123 subdomains: up to 253 characters, dots allowed.
    long_name = "a" * 253
    await client.create(CONFIGMAPS, configmap(long_name, ns))
    await client.create(CONFIGMAPS, configmap("dotted.name-1", ns))
    assert sorted(names((await client.list(CONFIGMAPS, namespace=ns)).items)) == sorted(
        [long_name, "dotted.name-1"])


@pytest.mark.parametrize("bad", [
    pytest.param("dotted.name", id="dot"),
    pytest.param("n" * 64, id="too-long"),
    pytest.param("Upper", id="uppercase"),
])
async def test_namespace_names_are_dns_labels(client, bad):
    with pytest.raises(Invalid) as exc:
        await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                         "metadata": {"name": bad}})
    assert_invalid(exc, "metadata.name")


@pytest.mark.parametrize("labels", [
    pytest.param({"bad key": "v"}, id="key-space"),
    pytest.param({"-bad": "v"}, id="key-leading-dash"),
    pytest.param({"k" * 64: "v"}, id="key-too-long"),
    pytest.param({"Bad_Prefix/name": "v"}, id="key-bad-prefix"),
    pytest.param({"/name": "v"}, id="key-empty-prefix"),
    pytest.param({"key": "bad value"}, id="value-space"),
    pytest.param({"key": "v" * 64}, id="value-too-long"),
    pytest.param({"key": "-v"}, id="value-leading-dash"),
])
async def test_invalid_labels_are_rejected(client, ns, labels):
    with pytest.raises(Invalid) as exc:
        await client.create(CONFIGMAPS, configmap("labelled", ns, labels=labels))
    assert_invalid(exc, "metadata.labels", prefix=True)
    with pytest.raises(Invalid) as exc:
        await client.create(WIDGETS, widget("labelled", ns, labels=labels))
    assert_invalid(exc, "metadata.labels", prefix=True)
    assert names((await client.list(CONFIGMAPS, namespace=ns)).items) == []


async def test_invalid_labels_are_rejected_on_update_and_patch(client, ns):
    obj = await client.create(CONFIGMAPS, configmap("labelled", ns, labels={"ok": "yes"}))
    obj["metadata"]["labels"] = {"ok": "yes", "bad key": "v"}
    with pytest.raises(Invalid) as exc:
        await client.update(CONFIGMAPS, obj)
    assert_invalid(exc, "metadata.labels", prefix=True)
    with pytest.raises(Invalid) as exc:
        await client.patch(CONFIGMAPS, "labelled", {"metadata": {"labels": {"k": "bad value"}}},
                           namespace=ns)
    assert_invalid(exc, "metadata.labels", prefix=True)
    got = await client.get(CONFIGMAPS, "labelled", namespace=ns)
    assert got["metadata"]["labels"] == {"ok": "yes"}


async def test_valid_label_forms(client, ns):
    labels = {"example.com/name": "v", "a": "", "A_b.c-d": "X_y.z-1", "k" * 63: "v" * 63}
    created = await client.create(CONFIGMAPS, configmap("labelled", ns, labels=labels))
    assert created["metadata"]["labels"] == labels


async def test_invalid_annotation_keys_are_rejected(client, ns):
    obj = configmap("annotated", ns)
    obj["metadata"]["annotations"] = {"bad key": "any value at all is fine"}
    with pytest.raises(Invalid) as exc:
        await client.create(CONFIGMAPS, obj)
    assert_invalid(exc, "metadata.annotations", prefix=True)
