"""The scheduling framework: extension points, registry, profiles, and the pipeline running them.

See :mod:`.interface` for the extension points, :mod:`.registry` and
:mod:`.profile` for configuration, :mod:`.pipeline` for one scheduling cycle,
:mod:`.handle` for what plugins see of the framework, :mod:`.waiting` for Permit,
:mod:`.diagnosis` for unschedulable messages.
"""

from .diagnosis import Diagnosis
from .handle import Effects, FrameworkHandle
from .interface import (
    SKIP,
    SUCCESS,
    ClassContext,
    Code,
    CycleState,
    Deps,
    PostFilterResult,
    QueuedPod,
    Status,
    unschedulable,
    wait,
)
from .pipeline import Decision, Framework, NoEffects
from .profile import DEFAULT_PLUGINS, DEFAULT_WEIGHTS, Profile
from .registry import Registry
from .waiting import WaitingPod, WaitingPods

__all__ = [
    "DEFAULT_PLUGINS", "DEFAULT_WEIGHTS", "SKIP", "SUCCESS",
    "ClassContext", "Code", "CycleState", "Decision", "Deps", "Diagnosis", "Effects",
    "Framework", "FrameworkHandle", "NoEffects", "PostFilterResult", "Profile", "QueuedPod",
    "Registry", "Status",
    "WaitingPod", "WaitingPods", "unschedulable", "wait",
]
