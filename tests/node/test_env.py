import base64

import pytest

from pincompute.node.env import ConfigError, build, command_line, expand, references

POD = {"metadata": {"name": "web-1", "namespace": "team-a", "uid": "u1",
                    "labels": {"app": "web"}, "annotations": {"note": "hi"}},
       "spec": {"nodeName": "n1", "containers": [
           {"name": "main", "resources": {"limits": {"cpu": "1500m", "memory": "1Gi"}}},
           {"name": "side"}]},
       "status": {"podIP": "127.64.0.2", "hostIP": "127.64.0.1"}}


def test_expand():
    env = {"A": "x", "B": "y"}
    assert expand("$(A)-$(B)-$(C)", env) == "x-y-$(C)"
    assert expand("$$(A) costs $$5", env) == "$(A) costs $5"


def test_build_in_order_with_sources():
    secret = {"kind": "Secret", "data": {"pw": base64.b64encode(b"s3cret").decode()}}
    cm = {"kind": "ConfigMap", "data": {"mode": "fast", "level": "3"}}
    container = {"name": "main", "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}],
                 "env": [
                     {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                     {"name": "GREETING", "value": "hi $(NAME)"},
                     {"name": "APP", "valueFrom": {"fieldRef": {
                         "fieldPath": "metadata.labels['app']"}}},
                     {"name": "CPU", "valueFrom": {"resourceFieldRef": {
                         "resource": "limits.cpu"}}},
                     {"name": "CPU_M", "valueFrom": {"resourceFieldRef": {
                         "resource": "limits.cpu", "divisor": "1m"}}},
                     {"name": "SIDE_MEM", "valueFrom": {"resourceFieldRef": {
                         "resource": "limits.memory", "containerName": "side"}}},
                     {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "s", "key": "pw"}}},
                     {"name": "OPT", "valueFrom": {"configMapKeyRef": {
                         "name": "absent", "key": "k", "optional": True}}},
                 ], "command": ["echo", "$(GREETING)"], "args": ["$(PW)"]}
    assert references(container) == {("ConfigMap", "cm"), ("Secret", "s"),
                                     ("ConfigMap", "absent")}
    env = build(POD, container, base={"HOSTNAME": "web-1"},
                configs={("Secret", "s"): secret, ("ConfigMap", "cm"): cm,
                         ("ConfigMap", "absent"): None},
                node_allocatable={"cpu": "4", "memory": "8Gi"})
    assert env["GREETING"] == "hi web-1"
    assert env["APP"] == "web"
    assert env["CPU"] == "2"  # rounded up
    assert env["CPU_M"] == "1500"
    assert env["SIDE_MEM"] == str(8 * 2**30)  # no limit: the node's allocatable
    assert env["PW"] == "s3cret"
    assert env["CM_mode"] == "fast"
    assert "OPT" not in env
    assert env["PATH"].startswith("/usr/local/sbin")
    assert command_line(container, env) == ["echo", "hi web-1", "s3cret"]


def test_missing_required_reference_is_a_config_error():
    container = {"name": "main", "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {
        "name": "cm", "key": "nope"}}}]}
    with pytest.raises(ConfigError, match="couldn't find key nope"):
        build(POD, container, base={}, configs={("ConfigMap", "cm"): {"data": {}}},
              node_allocatable={})
    with pytest.raises(ConfigError, match='configmap "cm" not found'):
        build(POD, container, base={}, configs={}, node_allocatable={})
