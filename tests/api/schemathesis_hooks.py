"""schemathesis hooks for the gateway's fuzz test (loaded through ``SCHEMATHESIS_HOOKS``).

A generated ``watch=true`` would hold its stream open until the request timed out; the hook
bounds every watch to one second, so the stream ends and the response is judged like any.
"""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.hook
def before_call(context: Any, case: Any, **kwargs: Any) -> None:
    query = case.query if isinstance(case.query, dict) else None
    if query is not None and str(query.get("watch", "")).lower() in ("true", "1", "yes", "on"):
        query["timeoutSeconds"] = 1
