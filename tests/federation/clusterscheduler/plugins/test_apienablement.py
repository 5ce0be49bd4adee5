from __future__ import annotations

from tests.federation.clusterscheduler.support import app, excluded, member, scheduler, training


def test_cluster_without_the_kind_is_excluded() -> None:
    s = scheduler(member("apps-only", "z1", supportedKinds=["PinApp", "PinJob"]),
                  member("everything", "z1"))
    d = s.schedule(training(1), reserve=False)
    assert d.replicas() == {"everything": 2}
    assert excluded(d)["apps-only"] == (
        "APIEnablement", "kind PinTrainingJob is not supported (supportedKinds: PinApp, PinJob)")
    assert set(s.schedule(app(4), reserve=False).replicas()) == {"apps-only", "everything"}
