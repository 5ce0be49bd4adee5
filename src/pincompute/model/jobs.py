"""PinJob: a run-to-finish parallel job, like a Kubernetes Job (and JobSet's job).

Theory
------
The fields mean what they mean for a Kubernetes ``batch/v1`` Job, so users
bring their knowledge along:

- ``parallelism`` pods run at once until ``completions`` pods succeed (absent
  completions: the job is done when any pod succeeds and the rest have stopped);
- ``completionMode: Indexed`` gives each pod an index (``JOB_COMPLETION_INDEX``)
  from 0 to completions-1, and the job completes when every index has
  succeeded; ``backoffLimitPerIndex``/``maxFailedIndexes`` bound failures per
  index instead of per job;
- ``backoffLimit`` failed pods (retries with exponential back-off) fail the job;
  ``activeDeadlineSeconds`` bounds its running time; ``suspend`` stops creating
  pods (and removes running ones); ``ttlSecondsAfterFinished`` deletes it later;
- ``successPolicy`` (Indexed only) declares success early, when given indexes or
  a count of them have succeeded;
- ``failurePolicy`` rules (Kubernetes' podFailurePolicy) act on a failed pod by
  its exit codes or pod conditions: ``FailJob``, ``FailIndex``, ``Ignore`` (not
  counted against the backoff limit), ``Count`` (the default treatment) or
  ``RestartJob`` (JobSet's restart: every pod is replaced, up to
  ``failurePolicy.maxRestarts`` times, then the job fails);
- ``groups`` (JobSet's replicated jobs) make the job a set of named groups of
  pods, ``replicas`` each, all running at once; pod ``i`` of group ``g`` is
  ``<job>-<g>-<i>`` and every pod can resolve the others by that name. With
  groups, completions and parallelism are derived (every pod must succeed, all
  run at once) and a success rule may name ``groups`` (``All`` of their pods, or
  ``Any`` one of them).

The template's ``restartPolicy`` defaults to ``Never`` and may be ``OnFailure``;
``Always`` is rejected, and a failure policy requires ``Never``.

:class:`JobBody` is the job without tier and placement: PinCronJob's
``jobTemplate.spec`` is one, and the jobs it creates inherit the cron job's tier
and placement.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from .base import (
    CamelModel,
    DNSLabel,
    NonEmptyStr,
    NonNegInt,
    PosInt,
    StatusModel,
    WorkloadStatusBase,
    fail,
)
from .containers import PodTemplate
from .placement import DEFAULT_TIER, FederatedStatusMixin, Placement, Tier

_INDEXES_RE = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")


def parse_indexes(text: str) -> list[tuple[int, int]]:
    """``"0-2,5"`` → ``[(0, 2), (5, 5)]``; raises ValueError unless ranges ascend."""
    if not _INDEXES_RE.match(text):
        raise ValueError("must be a comma-separated list of indexes or ranges, e.g. '0-2,5'")
    ranges: list[tuple[int, int]] = []
    last = -1
    for part in text.split(","):
        lo_s, _, hi_s = part.partition("-")
        lo, hi = int(lo_s), int(hi_s or lo_s)
        if hi < lo or lo <= last:
            raise ValueError("ranges must be ascending and must not overlap")
        ranges.append((lo, hi))
        last = hi
    return ranges


class SuccessRule(CamelModel):
    """The job succeeds when these indexes (or this many of them) have succeeded."""

    succeeded_indexes: str | None = None
    """Indexes that must all succeed, e.g. ``"0-2,5"``."""
    succeeded_count: PosInt | None = None
    """How many (of ``succeededIndexes``, when given) must succeed."""
    groups: list[DNSLabel] | None = None
    """Groups (of ``spec.groups``) whose pods decide: ``All`` of them, or ``Any`` one."""
    operator: Literal["All", "Any"] = "All"
    """With ``groups``: every pod of those groups must succeed, or any one of them."""

    @model_validator(mode="after")
    def _check(self) -> SuccessRule:
        if self.groups is not None:
            if self.succeeded_indexes is not None or self.succeeded_count is not None:
                raise fail("groups may not be combined with succeededIndexes or "
                           "succeededCount", "groups", reason="FieldValueForbidden")
            if not self.groups:
                raise fail("must name at least one group", "groups",
                           reason="FieldValueRequired")
            return self
        if self.succeeded_indexes is None and self.succeeded_count is None:
            raise fail("must specify succeededIndexes, succeededCount, groups or both "
                       "of the first two", reason="FieldValueRequired")
        if self.succeeded_indexes is not None:
            try:
                ranges = parse_indexes(self.succeeded_indexes)
            except ValueError as e:
                raise fail(f"Invalid value: {self.succeeded_indexes!r}: {e}",
                           "succeededIndexes") from None
            size = sum(hi - lo + 1 for lo, hi in ranges)
            if self.succeeded_count is not None and self.succeeded_count > size:
                raise fail(f"Invalid value: {self.succeeded_count}: must be less than or equal "
                           f"to the number of succeededIndexes ({size})", "succeededCount")
        return self

    def max_index(self) -> int:
        return parse_indexes(self.succeeded_indexes)[-1][1] if self.succeeded_indexes else -1


class SuccessPolicy(CamelModel):
    """Declare success before every index succeeded (any rule suffices)."""

    rules: list[SuccessRule] = Field(min_length=1)
    """The rules, ORed."""


class ExitCodesRequirement(CamelModel):
    """Match a failed pod by a container's exit code."""

    operator: Literal["In", "NotIn"]
    """``In``: the exit code is one of ``values``; ``NotIn``: it is not."""
    values: list[int] = Field(min_length=1)
    """Exit codes (``In`` may not list 0)."""
    container_name: DNSLabel | None = None
    """Only this container's exit code (default: any main container)."""

    @model_validator(mode="after")
    def _check(self) -> ExitCodesRequirement:
        if self.operator == "In" and 0 in self.values:
            raise fail("Invalid value: 0: may not be 0 for the In operator", "values",
                       self.values.index(0))
        return self


class PodConditionRequirement(CamelModel):
    """Match a failed pod by one of its conditions, e.g. ``DisruptionTarget``."""

    type: NonEmptyStr
    """The condition type."""
    status: Literal["True", "False", "Unknown"] = "True"
    """The condition status."""


class FailureRule(CamelModel):
    """What to do with a failed pod matching exit codes or pod conditions (exactly one)."""

    action: Literal["FailJob", "FailIndex", "Ignore", "Count", "RestartJob"]
    """``FailJob``, ``FailIndex`` (needs backoffLimitPerIndex), ``Ignore``, ``Count`` or
    ``RestartJob`` (replace every pod, up to ``maxRestarts`` times)."""
    on_exit_codes: ExitCodesRequirement | None = None
    """Match by exit code."""
    on_pod_conditions: list[PodConditionRequirement] | None = None
    """Match by pod conditions (any of them)."""

    @model_validator(mode="after")
    def _check(self) -> FailureRule:
        if (self.on_exit_codes is None) == (not self.on_pod_conditions):
            raise fail("must specify exactly one of onExitCodes, onPodConditions",
                       reason="FieldValueRequired" if self.on_exit_codes is None
                       else "FieldValueForbidden")
        return self


class FailurePolicy(CamelModel):
    """Rules evaluated in order for each failed pod; the first match decides."""

    rules: list[FailureRule] = Field(min_length=1)
    """The rules."""
    max_restarts: NonNegInt = 0
    """How many times ``RestartJob`` may restart the job before it fails instead."""


class JobGroup(CamelModel):
    """A replicated group of pods (JobSet's replicated job): ``replicas`` pods at once."""

    name: DNSLabel
    """The group's name: its pods are ``<job>-<name>-<index>``."""
    replicas: PosInt = 1
    """Pods in the group (indexes 0..replicas-1), all running at once."""
    template: PodTemplate | None = None
    """The group's pod (default: the job's ``template``)."""


class JobBody(CamelModel):
    """A job's own settings (everything but tier and placement)."""

    parallelism: NonNegInt = 1
    """Pods running at once."""
    completions: NonNegInt | None = None
    """Successful pods needed (absent: any success finishes the job)."""
    completion_mode: Literal["NonIndexed", "Indexed"] = "NonIndexed"
    """``Indexed`` gives each pod an index 0..completions-1."""
    backoff_limit: NonNegInt = 6
    """Failed pods allowed before the job fails."""
    backoff_limit_per_index: NonNegInt | None = None
    """Failed pods allowed per index (Indexed only)."""
    max_failed_indexes: NonNegInt | None = None
    """Failed indexes allowed before the job fails (needs backoffLimitPerIndex)."""
    active_deadline_seconds: PosInt | None = None
    """Seconds the job may run before it is failed."""
    ttl_seconds_after_finished: NonNegInt | None = None
    """Delete the job this long after it finished."""
    suspend: bool = False
    """Create no pods (running ones are stopped)."""
    success_policy: SuccessPolicy | None = None
    """Early success rules (Indexed only)."""
    failure_policy: FailurePolicy | None = None
    """Rules for failed pods (needs template restartPolicy Never)."""
    groups: list[JobGroup] | None = None
    """Replicated groups of pods, each reachable at ``<job>-<group>-<index>``."""
    template: PodTemplate
    """The pod each job pod runs (``restartPolicy`` Never or OnFailure; default Never)."""

    @model_validator(mode="after")
    def _check(self) -> JobBody:
        spec = self.template.spec
        spec.default_restart_policy("Never", allowed=("Never", "OnFailure"),
                                    where=("template", "spec"))
        names: set[str] = set()
        for i, group in enumerate(self.groups or ()):
            if group.name in names:
                raise fail(f"Duplicate value: {group.name!r}", "groups", i, "name",
                           reason="FieldValueDuplicate")
            names.add(group.name)
            if group.template is not None:
                group.template.spec.default_restart_policy(
                    "Never", allowed=("Never", "OnFailure"),
                    where=("groups", i, "template", "spec"))
        if self.groups is not None:
            if not self.groups:
                raise fail("must name at least one group", "groups",
                           reason="FieldValueRequired")
            if self.completions is not None:
                raise fail("completions are derived from groups", "completions",
                           reason="FieldValueForbidden")
        indexed = self.completion_mode == "Indexed" or self.groups is not None
        if indexed and self.groups is None and self.completions is None:
            raise fail("must be specified when completionMode is Indexed", "completions",
                       reason="FieldValueRequired")
        if self.backoff_limit_per_index is not None and not indexed:
            raise fail("requires completionMode Indexed", "backoffLimitPerIndex",
                       reason="FieldValueForbidden")
        if self.max_failed_indexes is not None:
            if self.backoff_limit_per_index is None:
                raise fail("requires backoffLimitPerIndex", "maxFailedIndexes",
                           reason="FieldValueForbidden")
            if self.completions is not None and self.max_failed_indexes > self.completions:
                raise fail(f"Invalid value: {self.max_failed_indexes}: must be less than or "
                           f"equal to completions ({self.completions})", "maxFailedIndexes")
        if self.success_policy is not None:
            if not indexed:
                raise fail("requires completionMode Indexed", "successPolicy",
                           reason="FieldValueForbidden")
            size = self.completions if self.groups is None else sum(
                g.replicas for g in self.groups)
            for i, rule in enumerate(self.success_policy.rules):
                if rule.groups is not None:
                    for j, name in enumerate(rule.groups):
                        if name not in names:
                            raise fail(f"Invalid value: {name!r}: not a group of spec.groups",
                                       "successPolicy", "rules", i, "groups", j)
                    continue
                assert size is not None
                if rule.max_index() >= size:
                    raise fail(f"Invalid value: {rule.succeeded_indexes!r}: indexes must be "
                               f"less than completions ({size})", "successPolicy",
                               "rules", i, "succeededIndexes")
                if rule.succeeded_count is not None and rule.succeeded_count > size:
                    raise fail(f"Invalid value: {rule.succeeded_count}: must be less than or "
                               f"equal to completions ({size})", "successPolicy",
                               "rules", i, "succeededCount")
        if self.failure_policy is not None:
            if spec.restart_policy != "Never":
                raise fail("a failurePolicy requires restartPolicy Never", "template", "spec",
                           "restartPolicy", reason="FieldValueNotSupported")
            for i, failure_rule in enumerate(self.failure_policy.rules):
                if failure_rule.action == "FailIndex" and self.backoff_limit_per_index is None:
                    raise fail("FailIndex requires backoffLimitPerIndex", "failurePolicy",
                               "rules", i, "action", reason="FieldValueNotSupported")
        return self


class PinJobSpec(JobBody):
    """A run-to-finish job with a tier and a placement."""

    tier: Tier = DEFAULT_TIER
    """The capacity tier: ``reserved``, ``ondemand`` (default) or ``preemptible``."""
    placement: Placement = Field(default_factory=Placement)
    """Where the job's pods may run."""


class UncountedPods(StatusModel):
    succeeded: list[str] | None = None
    failed: list[str] | None = None


class PinJobStatus(WorkloadStatusBase, FederatedStatusMixin):
    """Pod counts and outcome, as a Kubernetes Job reports them."""

    phase: str | None = None
    """``Pending``, ``Running``, ``Suspended``, ``Succeeded`` or ``Failed``."""
    active: int | None = None
    """Pods running (or pending)."""
    ready: int | None = None
    """Pods ready."""
    succeeded: int | None = None
    """Pods that succeeded."""
    failed: int | None = None
    """Pods that failed."""
    completed_indexes: str | None = None
    """Indexes that succeeded, e.g. ``"0-3,5"`` (Indexed)."""
    failed_indexes: str | None = None
    """Indexes that failed for good (with backoffLimitPerIndex)."""
    start_time: str | None = None
    """When the job started (RFC 3339)."""
    completion_time: str | None = None
    """When it succeeded."""
    uncounted_terminated_pods: UncountedPods | None = None
    """Finished pods not yet counted."""
    restarts: int | None = None
    """How many times a ``RestartJob`` rule restarted the job."""
    active_seconds: float | None = None
    """Seconds the job ran before its last suspension (not counting time suspended or
    queued); ``activeDeadlineSeconds`` bounds this plus the time since ``startTime``."""
    hosts: dict[str, str] | None = None
    """Groups: pod name → IP of the pods that have one (also in the discovery file)."""


__all__ = [
    "ExitCodesRequirement", "FailurePolicy", "FailureRule", "JobBody", "JobGroup", "PinJobSpec",
    "PinJobStatus", "PodConditionRequirement", "SuccessPolicy", "SuccessRule",
    "parse_indexes",
]
