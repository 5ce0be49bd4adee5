"""PinTrainingJob: distributed training with roles, gang scheduling and rendezvous.

Theory
------
Modelled on Kubeflow's PyTorchJob/TFJob, one kind for both frameworks:

- ``framework`` is ``pytorch`` or ``tensorflow``; it decides which roles exist
  and what rendezvous environment the operator injects: ``MASTER_ADDR``,
  ``MASTER_PORT``, ``WORLD_SIZE``, ``RANK`` for PyTorch (rank 0 is the master, or
  worker 0 without one), ``TF_CONFIG`` for TensorFlow;
- ``roles`` maps a role to its replicas and pod template.  PyTorch: ``master``
  (exactly one replica) and ``worker``.  TensorFlow: ``chief`` (or the legacy
  ``master``, at most one replica, not both), ``worker``, ``ps`` and
  ``evaluator`` (at most one).  At least one replica in all.
- each role's ``restartPolicy`` (default ``OnFailure``) governs its pods:
  ``OnFailure``/``Always`` restart a failed container in place (the node does;
  the restarts count against ``backoffLimit``); ``Never`` fails the job when a
  pod fails; ``ExitCode`` restarts the *whole group* (every pod recreated, a new
  rendezvous) on retryable exit codes — 128 and above, i.e. killed by a signal,
  plus the role's ``retryableExitCodes`` — and fails the job on others.  It
  fills the template's ``restartPolicy`` (``Never`` for ExitCode); a template
  naming a different one is an error.
- ``successPolicy``: ``Chief`` (default) — the job succeeds when the master or
  chief succeeds (worker 0 without one); ``AllWorkers`` — when every pod of the
  master, chief and worker roles has.
- ``gang`` scheduling (on by default) places all ``minMember`` pods or none
  (default: every replica of every role), giving up after ``timeoutSeconds``;
- ``port`` is the rendezvous port (default 23456 for PyTorch, 2222 for TensorFlow).

Status gives per-role pod counts, the phase, and restarts of the whole group.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from .base import CamelModel, NonNegInt, PosInt, StatusModel, WorkloadStatusBase, fail
from .containers import PodTemplate, RestartPolicy
from .placement import DEFAULT_TIER, FederatedStatusMixin, Placement, Tier

Framework = Literal["pytorch", "tensorflow"]
RoleName = Literal["master", "chief", "worker", "ps", "evaluator"]
ROLE_NAMES: tuple[RoleName, ...] = ("master", "chief", "worker", "ps", "evaluator")
FRAMEWORK_ROLES: dict[str, tuple[RoleName, ...]] = {
    "pytorch": ("master", "worker"),
    "tensorflow": ("chief", "master", "worker", "ps", "evaluator"),
}
DEFAULT_PORTS: dict[str, int] = {"pytorch": 23456, "tensorflow": 2222}
POD_RESTART_POLICY: dict[str, RestartPolicy] = {
    "Always": "Always", "OnFailure": "OnFailure", "Never": "Never", "ExitCode": "Never",
}
"""A role's ``restartPolicy`` → its pods' (the operator decides about ``ExitCode`` failures)."""


class TrainingRole(CamelModel):
    """The replicas of one role and the pod they run."""

    template: PodTemplate
    """The pod each replica runs."""
    replicas: NonNegInt = 1
    """How many pods play this role."""
    restart_policy: Literal["Always", "OnFailure", "Never", "ExitCode"] = "OnFailure"
    """What happens when a replica fails (``ExitCode``: retry on exit codes >= 128)."""
    retryable_exit_codes: list[Annotated[int, Field(ge=1, le=255)]] | None = None
    """With ``ExitCode``: exit codes below 128 that restart the group too (not fail the job)."""


class TrainingRoles(CamelModel):
    """The job's roles; which are allowed depends on the framework."""

    master: TrainingRole | None = None
    """PyTorch rank 0 (one replica); TensorFlow's legacy name for chief."""
    chief: TrainingRole | None = None
    """TensorFlow's coordinating worker (at most one replica)."""
    worker: TrainingRole | None = None
    """The workers."""
    ps: TrainingRole | None = None
    """TensorFlow parameter servers."""
    evaluator: TrainingRole | None = None
    """TensorFlow's evaluator (at most one replica)."""

    def items(self) -> list[tuple[RoleName, TrainingRole]]:
        """The roles present, in ``ROLE_NAMES`` order."""
        return [(n, r) for n in ROLE_NAMES if (r := getattr(self, n)) is not None]


class Gang(CamelModel):
    """All-or-nothing scheduling of the job's pods."""

    enabled: bool = True
    """Schedule the pods as a gang."""
    min_member: PosInt | None = None
    """Pods that must be placed together (default: every replica)."""
    timeout_seconds: PosInt = 300
    """Seconds to wait for the whole gang before giving the reservations back."""


class PinTrainingJobSpec(CamelModel):
    """A distributed training job."""

    framework: Framework
    """``pytorch`` or ``tensorflow``."""
    roles: TrainingRoles
    """Replicas and templates per role."""
    gang: Gang = Field(default_factory=Gang)
    """Gang scheduling."""
    port: int | None = Field(default=None, ge=1, le=65535)
    """The rendezvous port (default 23456 for PyTorch, 2222 for TensorFlow)."""
    success_policy: Literal["Chief", "AllWorkers"] = "Chief"
    """When the job has succeeded: its master/chief (worker 0 without one) succeeded
    (``Chief``), or every master, chief and worker pod (``AllWorkers``)."""
    backoff_limit: NonNegInt = 3
    """Restarts of the group allowed before the job fails."""
    active_deadline_seconds: PosInt | None = None
    """Seconds the job may run before it is failed."""
    ttl_seconds_after_finished: NonNegInt | None = None
    """Delete the job this long after it finished."""
    suspend: bool = False
    """Create no pods (running ones are stopped)."""
    tier: Tier = DEFAULT_TIER
    """The capacity tier: ``reserved``, ``ondemand`` (default) or ``preemptible``."""
    placement: Placement = Field(default_factory=Placement)
    """Where the job's pods may run."""

    @model_validator(mode="after")
    def _check(self) -> PinTrainingJobSpec:
        allowed = FRAMEWORK_ROLES[self.framework]
        roles = self.roles.items()
        for name, role in roles:
            if name not in allowed:
                raise fail(f"role {name!r} is not supported by {self.framework}; supported "
                           f"roles: {', '.join(allowed)}", "roles", name,
                           reason="FieldValueNotSupported")
            policy = POD_RESTART_POLICY[role.restart_policy]
            spec = role.template.spec
            if spec.restart_policy is not None and spec.restart_policy != policy:
                raise fail(f'Invalid value: "{spec.restart_policy}": must be "{policy}" (set by '
                           f"the role's restartPolicy {role.restart_policy}) or left out",
                           "roles", name, "template", "spec", "restartPolicy")
            spec.restart_policy = policy
        if self.framework == "pytorch":
            if self.roles.master is not None and self.roles.master.replicas != 1:
                raise fail(f"Invalid value: {self.roles.master.replicas}: must be 1",
                           "roles", "master", "replicas")
        else:
            if self.roles.master is not None and self.roles.chief is not None:
                raise fail("may not be set together with chief", "roles", "master",
                           reason="FieldValueForbidden")
            for name in ("master", "chief", "evaluator"):
                role = getattr(self.roles, name)
                if role is not None and role.replicas > 1:
                    raise fail(f"Invalid value: {role.replicas}: must be 0 or 1", "roles",
                               name, "replicas")
        total = sum(role.replicas for _, role in roles)
        if total == 0:
            raise fail("the job needs at least one replica", "roles",
                       reason="FieldValueRequired")
        if self.gang.min_member is None:
            self.gang.min_member = total
        elif self.gang.min_member > total:
            raise fail(f"Invalid value: {self.gang.min_member}: must be less than or equal to "
                       f"the total replicas ({total})", "gang", "minMember")
        if self.port is None:
            self.port = DEFAULT_PORTS[self.framework]
        return self

    def total_replicas(self) -> int:
        return sum(role.replicas for _, role in self.roles.items())


class RoleStatus(StatusModel):
    """Pod counts of one role."""

    active: int | None = None
    succeeded: int | None = None
    failed: int | None = None
    ready: int | None = None


class PinTrainingJobStatus(WorkloadStatusBase, FederatedStatusMixin):
    """Phase, per-role pod counts and group restarts."""

    phase: str | None = None
    """``Created`` (pods created, waiting for the whole gang to run), ``Running``,
    ``Restarting`` (the group's pods are being replaced), ``Succeeded``, ``Failed`` or
    ``Suspended``."""
    roles: dict[str, RoleStatus] | None = None
    """Pod counts by role."""
    restarts: int | None = None
    """How many times the group was restarted."""
    start_time: str | None = None
    """When every pod of the gang first ran (RFC 3339)."""
    completion_time: str | None = None
    """When the job finished."""
    message: str | None = None
    """Why the job is in this phase."""


__all__ = [
    "DEFAULT_PORTS", "FRAMEWORK_ROLES", "POD_RESTART_POLICY", "ROLE_NAMES", "Framework", "Gang",
    "PinTrainingJobSpec", "PinTrainingJobStatus", "RoleName", "RoleStatus", "TrainingRole",
    "TrainingRoles",
]
