"""What the sync and async clients share besides transport: settings and name resolution.

Both clients take the same constructor arguments (or a :class:`~.config.Config`)
and resolve the same way the kind a caller names (``"app"``, ``"pinapps"``, a
:class:`~.kinds.KindRef`) and the project a call goes to (the argument, else the
client's default project).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Literal

from .config import Config, load_config
from .kinds import KindRef, resolve_kind
from .routes import MissingScope
from .transport import Hooks, RetryPolicy, Settings

KindArg = str | KindRef
APPLY_ATTEMPTS = 10
"""Read-modify-write attempts of ``apply`` before a Conflict is raised."""
Objects = list[dict[str, Any]]
"""A list of objects (an alias: the clients' ``list`` method shadows the builtin)."""
ApplyResult = Literal["created", "configured", "unchanged"]


def make_settings(server: str | None, *, token: str | None, project: str | None,
                  timeout: float, retry: RetryPolicy | None, hooks: Hooks | None,
                  verify: bool | str, config: Config | None) -> Settings:
    if config is None:
        config = load_config(server=server, token=token, project=project)
    return Settings(server=(server or config.server).rstrip("/"),
                    token=token or config.token, project=project or config.project,
                    timeout=timeout, retry=retry or RetryPolicy(), hooks=hooks or Hooks(),
                    verify=verify)


class ClientBase:
    settings: Settings

    @property
    def server(self) -> str:
        return self.settings.server

    @property
    def project(self) -> str | None:
        """The default project of project-scoped calls."""
        return self.settings.project

    def _project(self, project: str | None) -> str | None:
        return project or self.settings.project

    def _require_project(self, project: str | None) -> str:
        name = project or self.settings.project
        if not name:
            raise MissingScope("which project? pass project= (or set the client's default)")
        return name

    @staticmethod
    def _kind(kind: KindArg) -> KindRef:
        return kind if isinstance(kind, KindRef) else resolve_kind(kind)


def for_update(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """The object to PUT so that ``current`` becomes what ``desired`` says.

    A PUT replaces the whole object, so it starts from ``current`` — keeping what
    the platform keeps there (finalizers, owner references, the resourceVersion
    that makes a concurrent change a Conflict) — and takes from ``desired`` what a
    user writes: every top-level field but ``metadata`` and ``status``, and the
    labels and annotations it gives.
    """
    out = copy.deepcopy({k: v for k, v in current.items() if k != "status"})
    for key, value in desired.items():
        if key not in ("metadata", "status", "apiVersion", "kind"):
            out[key] = copy.deepcopy(value)
    md = out.setdefault("metadata", {})
    for key in ("labels", "annotations"):
        if key in (desired.get("metadata") or {}):
            md[key] = copy.deepcopy(desired["metadata"][key])
    return out


def applied_result(before: Mapping[str, Any], after: Mapping[str, Any]) -> ApplyResult:
    """``unchanged`` when the update bumped neither the generation nor the labels."""
    old, new = before.get("metadata") or {}, after.get("metadata") or {}
    same = old.get("generation") == new.get("generation") and all(
        (old.get(k) or {}) == (new.get(k) or {}) for k in ("labels", "annotations"))
    return "unchanged" if same else "configured"


def conflict_pause(attempt: int) -> float:
    """Seconds to wait before read-modify-write attempt ``attempt`` (1, 2, ...): the
    object changed, or the gateway's cache has not caught up with our last read yet."""
    return min(0.02 * 2 ** attempt, 1.0)
