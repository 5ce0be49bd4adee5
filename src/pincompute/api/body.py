"""Request bodies and responses: JSON in, pre-encoded JSON out.

Handlers read bodies themselves (``await read_object(request)``) rather than through a
pydantic parameter: a kind's object is validated by its own model with the store's rules
(:mod:`pincompute.model.registry`), so the errors name fields as ``spec.replicas`` — the
same causes the store and a real API server give — and nothing is parsed twice.  Bodies
nested deeper than the stores serialize are refused up front (400), arrays counted like
objects.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from starlette.responses import Response

from pincompute.kube.errors import BadRequest, Cause
from pincompute.kube.patch import MAX_DEPTH

JSON = "application/json"


async def read_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object (400 naming the problem otherwise)."""
    raw = await request.body()
    if not raw.strip():
        raise BadRequest("the request needs a JSON object as its body")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise BadRequest(f"the body is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise BadRequest(f"the body must be a JSON object, not {type(data).__name__}")
    if raw.count(b"{") + raw.count(b"[") > MAX_DEPTH:  # fewer openings cannot nest deeper
        check_nesting(data)
    return data


def check_nesting(data: Any) -> None:
    """400 for JSON nested deeper than the stores take (objects and arrays alike)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BadRequest(f"the body is nested too deeply: at most {MAX_DEPTH} levels",
                             causes=[Cause("body", f"nested deeper than {MAX_DEPTH} levels",
                                           "FieldValueInvalid")])
        children = value.values() if isinstance(value, dict) else value
        stack.extend((v, depth + 1) for v in children if isinstance(v, dict | list))


def json_response(data: Any, *, status_code: int = 200) -> Response:
    body = data if isinstance(data, bytes) else orjson.dumps(data)
    return Response(body, status_code=status_code, media_type=JSON)


def object_body_schema(description: str) -> dict[str, Any]:
    """``openapi_extra`` declaring a JSON-object request body."""
    return {"requestBody": {"required": True, "description": description, "content": {
        JSON: {"schema": {"type": "object", "additionalProperties": True}},
        "application/merge-patch+json": {"schema": {"type": "object",
                                                    "additionalProperties": True}}}}}
