from __future__ import annotations

import pytest

from pincompute.federation.clusterscheduler import RequestCache, RequestError, parse_request
from pincompute.model.infra import PinDaemonSpec

from .support import app, job, pod, template, training


def test_apps_divide_jobs_pods_and_gangs_go_whole() -> None:
    r = parse_request(app(5, cpu="500m", memory="1Gi"))
    assert (r.kind, r.mode, r.replicas) == ("PinApp", "Divided", 5)
    assert r.per_replica.tolist() == [500, 2**30, 0, 1]
    assert r.whole.tolist() == [2500, 5 * 2**30, 0, 5]
    assert parse_request(job(3)).mode == "Whole"
    assert parse_request(job(3, placement={"replicaScheduling": {"allowSplit": True}})
                         ).mode == "Divided"
    assert parse_request(pod()).mode == "Whole"
    t = parse_request(training(3, worker_cpu="4", master_cpu="2"))
    assert (t.mode, t.replicas) == ("Whole", 4)
    assert t.per_replica[0] == 4000 and t.whole[0] == 14000
    dup = parse_request(app(2, placement={"replicaScheduling": {"type": "Duplicated"}}))
    assert dup.mode == "Duplicated"


def test_stopped_apps_daemons_and_unknown_kinds() -> None:
    stopped = app(4)
    stopped["spec"]["stopped"] = True
    assert parse_request(stopped).replicas == 0
    daemon = {"kind": "PinDaemon", "metadata": {"uid": "d"},
              "spec": PinDaemonSpec.model_validate({
                  "template": template(), "clusterSelector": {"matchLabels": {"a": "b"}}}
              ).to_dict()}
    d = parse_request(daemon)
    assert (d.mode, d.counted) == ("Duplicated", False)
    assert d.placement["clusterSelector"] == {"matchLabels": {"a": "b"}}
    with pytest.raises(RequestError, match="does not place kind 'Secret'"):
        parse_request({"kind": "Secret", "spec": {}})
    bad = app(1)
    bad["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "lots"
    with pytest.raises(RequestError, match=r"containers\[0\].resources.requests.cpu"):
        parse_request(bad)


def test_cache_is_per_generation() -> None:
    cache = RequestCache()
    obj = app(2, uid="u")
    assert cache.get(obj) is cache.get(obj)
    assert (cache.hits, cache.misses) == (1, 1)
    newer = app(7, uid="u", generation=2)
    assert cache.get(newer).replicas == 7
    cache.forget("u")
    assert cache.get(newer) is not cache.get(obj)


def test_static_key_is_shared_by_equal_placements() -> None:
    p = {"zones": ["z1"], "tolerations": [{"key": "a", "operator": "Exists"}]}
    assert parse_request(app(1, placement=p)).static_key == parse_request(
        app(9, placement=dict(reversed(p.items())))).static_key
    assert parse_request(app(1, placement=p)).static_key != parse_request(
        app(1, placement=p, tier="reserved")).static_key
