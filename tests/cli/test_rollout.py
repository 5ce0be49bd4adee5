"""What "rolled out" means, per kind (the table rollout status and apply --wait read)."""

from __future__ import annotations

from pincompute.cli.rollout import app_rollout, job_rollout, pod_rollout, queue_reason


def _app(*, replicas: int = 3, generation: int = 2, observed: int = 2, **status: object
         ) -> dict[str, object]:
    return {"metadata": {"generation": generation}, "spec": {"replicas": replicas},
            "status": {"observedGeneration": observed, **status}}


def test_an_app_is_rolled_out_when_every_replica_is_new_and_available() -> None:
    done = dict(phase="Running", replicas=3, updatedReplicas=3, availableReplicas=3)
    assert app_rollout(_app(**done)).done
    assert not app_rollout(_app(observed=1, **done)).done  # spec not seen yet
    assert not app_rollout(_app(**{**done, "replicas": 4})).done  # an old one left
    assert not app_rollout(_app(**{**done, "updatedReplicas": 2})).done
    assert not app_rollout(_app(**{**done, "phase": "Progressing"})).done
    # a zone-by-zone rollout still going (its next zone not started yet)
    assert not app_rollout(_app(**done, rollout={"phase": "Progressing"})).done
    assert app_rollout(_app(**done, rollout={"phase": "Complete"})).done
    assert app_rollout({"spec": {"replicas": 3, "stopped": True},
                        "status": {"phase": "Stopped"}}).done


def test_stuck_apps_say_why() -> None:
    queued = _app(admission={"state": "Queued", "position": 2, "queue": "demo/ondemand",
                             "reason": "cpu: requested 4, used 10 of 12"})
    state = app_rollout(queued)
    assert not state.done
    assert state.waiting == "queued (#2 in demo/ondemand): cpu: requested 4, used 10 of 12"
    failed = _app(phase="Failed", conditions=[{"type": "Progressing", "status": "False",
                                               "reason": "ProgressDeadlineExceeded",
                                               "message": "no progress for 600s"}])
    assert app_rollout(failed).failed == "no progress for 600s"
    assert queue_reason({"status": {}}) == ""


def test_pods_and_jobs() -> None:
    ready = {"status": {"phase": "Running", "conditions": [{"type": "Ready",
                                                            "status": "True"}]}}
    assert pod_rollout(ready).done
    assert not pod_rollout({"status": {"phase": "Pending"}}).done
    assert job_rollout({"status": {"phase": "Running", "active": 2}}).done
    assert job_rollout({"status": {"phase": "Failed"}}).failed
