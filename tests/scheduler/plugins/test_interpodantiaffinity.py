from __future__ import annotations

import numpy as np

from pincompute.scheduler.framework import Deps
from pincompute.scheduler.plugins.interpodantiaffinity import InterPodAntiAffinity
from tests.scheduler.support import HOST, ZONE, explain, info, node, passes, pod, scores, table_of


def anti(key: str = HOST, app: str = "db", **extra: object) -> dict:
    return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": key, **extra}]}}


def cluster() -> object:
    return table_of(node("a1", labels={ZONE: "a"}), node("a2", labels={ZONE: "a"}),
                    node("b1", labels={ZONE: "b"}))


def test_hostname_anti_affinity_keeps_replicas_apart() -> None:
    t = cluster()
    t.add_pod(info(pod("db-0", labels={"app": "db"})), "a1", assumed=True)
    p = info(pod("db-1", labels={"app": "db"}, affinity=anti()))
    plugin = InterPodAntiAffinity()
    assert plugin.filter_deps(p, t) == Deps.GLOBAL
    assert passes(plugin, p, t) == {"a1": False, "a2": True, "b1": True}
    assert explain(plugin, p, t) == {"node(s) didn't match pod anti-affinity rules": 1}


def test_zone_anti_affinity_and_namespaces() -> None:
    t = cluster()
    t.add_pod(info(pod("db-0", labels={"app": "db"})), "a1", assumed=False)
    t.add_pod(info(pod("db-x", labels={"app": "db"}, namespace="batch")), "b1", assumed=False)
    p = info(pod("db-1", labels={"app": "db"}, affinity=anti(key=ZONE)))
    assert passes(InterPodAntiAffinity(), p, t) == {"a1": False, "a2": False, "b1": True}
    everywhere = info(pod("db-2", labels={"app": "db"},
                          affinity=anti(key=ZONE, namespaceSelector={})))
    assert not any(passes(InterPodAntiAffinity(), everywhere, t).values())


def test_existing_pods_anti_affinity_is_symmetric() -> None:
    t = cluster()
    t.add_pod(info(pod("loner", labels={"app": "loner"}, affinity=anti(app="web"))), "a1",
              assumed=False)
    web = info(pod("web", labels={"app": "web"}))
    plugin = InterPodAntiAffinity()
    assert plugin.filter_deps(web, t) == Deps.GLOBAL
    assert passes(plugin, web, t) == {"a1": False, "a2": True, "b1": True}
    assert explain(plugin, web, t) == {
        "node(s) didn't satisfy existing pods anti-affinity rules": 1}
    # A pod the term does not match is not affected, and skips the plugin.
    assert plugin.filter_deps(info(pod("db", labels={"app": "db"})), t) == Deps.NONE


def test_preferred_anti_affinity_scores_away_from_matches() -> None:
    t = cluster()
    t.add_pod(info(pod("db-0", labels={"app": "db"})), "a1", assumed=False)
    p = info(pod("db-1", labels={"app": "db"}, affinity={"podAntiAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 50, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "db"}},
                                               "topologyKey": ZONE}}]}}))
    plugin = InterPodAntiAffinity()
    raw = scores(plugin, p, t)
    assert raw == {"a1": -50.0, "a2": -50.0, "b1": 0.0}
    norm = plugin.normalize(np.array([raw[t.names[r]] for r in range(t.n)]),
                            np.ones(t.n, dtype=bool))
    assert list(norm) == [0.0, 0.0, 100.0]
