"""Why an environment cannot be provided.

Theory of operation
-------------------
Every failure of :mod:`pincompute.kubeenv` is a :class:`KubeEnvError` whose message
says why and what to do.  :class:`KubeBinariesMissing` is the one failure the test
tier treats differently (a loud skip, a failure under ``CI=true``): the binaries are
not built and cannot be built here.  A :class:`KubeEnvStartupError` carries the last
:data:`LOG_TAIL_LINES` lines of the guilty process's log, because by the time it
rises the work directory holding that log has usually been removed.
"""

from __future__ import annotations

__all__ = ["LOG_TAIL_LINES", "KubeBinariesMissing", "KubeEnvError", "KubeEnvStartupError"]

#: How many last lines of a log (a process's, or a failed build's) an error carries.
LOG_TAIL_LINES = 40


class KubeEnvError(Exception):
    """The environment cannot be provided; the message says why and what to do."""


class KubeBinariesMissing(KubeEnvError):
    """The Kubernetes binaries are not built and cannot be built here (no Go toolchain)."""


class KubeEnvStartupError(KubeEnvError):
    """A process of the environment failed to start or to become ready in time."""
