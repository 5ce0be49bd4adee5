"""The REST API reference, ``docs/api.md``, rendered from the OpenAPI document.

Theory of operation
-------------------
The OpenAPI document (:mod:`.openapi`) is the single source: every route's summary,
description, parameters and body are declared where the route is.  This module turns it into
Markdown for readers: a fixed introduction (authentication and roles, errors, watch streams,
rate limits, the websocket and streaming endpoints the document cannot describe), then one
section per route family — the operation's first tag, families in :data:`FAMILY_ORDER` —
and under it one entry per operation: method and path, summary, description,
parameters as a table, the request body and the responses.

The rendering is a pure function of the document, deterministic (paths sorted, methods in
a fixed order), so ``python -m pincompute.api.openapi`` rewrites it with ``openapi.json`` and
a test fails when the committed copy is stale.
"""

from __future__ import annotations

from typing import Any

METHOD_ORDER: tuple[str, ...] = ("get", "post", "put", "patch", "delete")

FAMILY_ORDER: tuple[str, ...] = (
    "Token", "Project", "PinApp", "PinPod", "PinJob", "PinTrainingJob", "PinCronJob",
    "PinScaler", "Pod", "Events", "Usage", "MemberCluster", "NodePool", "Node", "NodeImage",
    "Rotation", "PinDaemon", "PinSidecar", "Audit")
"""The reader's order: a tenant's families first, then the platform's; a family not listed
comes after these, in the order of its first path."""

PATH_PARAMETERS: dict[str, str] = {
    "project": "The project (a namespace on the host)",
    "name": "The object's `metadata.name`",
    "cluster": "The member cluster's name",
    "pod": "The pod's name (as `GET .../pinapps/{name}/pods` lists them)",
    "plural": "The workload kind's plural: `pinapps`, `pinpods`, `pinjobs`, ...",
    "user": "The member's user name",
    "token_id": "The token's id (`self`: the caller's own token)",
}
"""What a path parameter means when its route does not say: these names mean the same on
every route."""

INTRO = """\
# REST API

<!-- Generated from docs/openapi.json by `python -m pincompute.api.openapi`; do not edit. -->

The gateway (`pincompute.api`, started by `pincompute up`) serves PinCompute's REST API under
`/api/v1`. The SDK (`docs/sdk.md`) and the command line (`docs/cli.md`) are clients of it; the
machine-readable description is [`openapi.json`](openapi.json) (also served live at
`/openapi.json`), from which this page is rendered.

## Authentication and roles

Every route but `/healthz`, `/readyz`, `/metrics` and `/openapi.json` needs an API token as
`Authorization: Bearer <token>` (`pincompute token create`; the websocket exec endpoint also
takes `?access_token=` because browsers cannot set headers on websockets). A missing, unknown
or revoked token is `401`.

Authorization is by role. A **platform admin** may do anything; the platform's own objects
(clusters, node pools, nodes, NodeImages, Rotations, PinDaemons, PinSidecars, projects and
quotas) are readable by anyone authenticated and writable only by platform admins, as each
operation below says. In a project, a user's role is their entry in the Project's
`spec.members`, or the scope of a project-scoped token:

| role | may |
|---|---|
| `viewer` | read the project's workloads, pods, logs, events, usage |
| `editor` | also create, change, delete and operate workloads; exec into pods |
| `admin` | also change the project's members and mint tokens for the project |

A denial is `403` naming the missing permission. A project the caller has no role in is a
`403` whether it exists or not, so one tenant cannot probe for another's projects. Every
mutation and every denial is written to the audit log (`GET /api/v1/audit`).

## Errors

Every failure is a Kubernetes `Status` body with the HTTP code of its reason:

```json
{"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 422, "reason": "Invalid",
 "message": "invalid request: body.replicas: Input should be a valid integer",
 "details": {"causes": [{"field": "body.replicas", "message": "...",
                         "reason": "FieldValueInvalid"}]}}
```

| code | reason | when |
|---|---|---|
| 400 | `BadRequest` | a body that is not JSON, a malformed selector |
| 401 | `Unauthorized` | no token, or a bad one |
| 403 | `Forbidden` | the role does not allow it (the message names the permission) |
| 404 | `NotFound` | no such object, or no such route (`GET /x` names the method and path) |
| 405 | `MethodNotAllowed` | the route exists, the method does not |
| 409 | `Conflict` / `AlreadyExists` | a stale `metadata.resourceVersion`, a name taken |
| 413 | `RequestEntityTooLarge` | a body over 3 MiB |
| 422 | `Invalid` | a field fails validation: one cause per field, named by its path |
| 429 | `TooManyRequests` | over a rate limit; see below |
| 500 | `InternalError` | a bug; the message points at the gateway's log, never at internals |

The `422` responses below are documented by FastAPI's schema (`HTTPValidationError`); on the
wire they are this same `Status` shape.

## Lists, pages and watch streams

Collections take `labelSelector`, and `limit` with `continue` for pages (the list's
`metadata.continue` is the token of the next page). With `watch=true` the answer is a
stream of newline-delimited JSON, one event a line:

```json
{"type": "ADDED", "object": {"apiVersion": "pincompute.io/v1alpha1", "kind": "PinApp", ...}}
{"type": "MODIFIED", "object": {...}}
```

`type` is `ADDED`, `MODIFIED`, `DELETED` or `ERROR`. Without `resourceVersion` the stream
first replays the current objects as `ADDED`; with the `metadata.resourceVersion` of a list,
it resumes from there. A version too old for the store's history is an `ERROR` event whose
object is a `410 Gone` Status: list again and watch from the new version. `timeoutSeconds`
ends the stream; the gateway also ends it when the client falls too far behind, or when the
caller's token is revoked or its role removed (checked while the stream lasts).

## Rate limits

Each authenticated identity has a budget of requests per second (200 by default), each
project one of mutations per second (100), each client address without a valid token one of
20. A request over budget is `429 TooManyRequests` with a `Retry-After` header (seconds,
at least 1); the SDK waits that long and retries when the wait is short.

## Logs and exec

`GET .../pods/{pod}/logs` streams `text/plain` (chunked; `follow=true` keeps it open until
the container exits). A shell or command in a container is the websocket
`WS /api/v1/projects/{project}/pods/{pod}/exec` (`editor` in the project), which OpenAPI
cannot describe: its query parameters, the one-byte channel framing of its binary messages
(stdin, stdout, stderr, status, resize) and its close codes are in
[`debugging.md`](debugging.md#exec-the-websocket-protocol), with the logs endpoint's
behaviour in [`debugging.md`](debugging.md#logs).
"""


def _schema_type(schema: dict[str, Any]) -> str:
    """A short type name: ``string``, ``integer``, ``boolean``, ``Member[]``, ``object``."""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    variants = schema.get("anyOf") or schema.get("oneOf")
    if variants:
        names = [_schema_type(v) for v in variants if v.get("type") != "null"]
        return " \\| ".join(dict.fromkeys(names)) or "null"
    kind = schema.get("type")
    if kind == "array":
        return f"{_schema_type(schema.get('items', {}))}[]"
    if kind is None:
        return "any"
    return str(kind)


def _number(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _bounds(schema: dict[str, Any]) -> str:
    """Limits worth telling a caller (range, length, enum, default)."""
    parts: list[str] = []
    for s in [schema, *(schema.get("anyOf") or [])]:
        if "minimum" in s or "maximum" in s:
            parts.append(f"{_number(s.get('minimum'))} to {_number(s.get('maximum'))}")
        if "maxLength" in s:
            parts.append(f"≤ {s['maxLength']} chars")
        if "enum" in s:
            parts.append("one of " + ", ".join(f"`{v}`" for v in s["enum"]))
    default = schema.get("default")
    if default is not None and default != "":
        shown = str(default).lower() if isinstance(default, bool) else str(default)
        parts.append(f"default `{shown}`")
    return "; ".join(parts)


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def _parameters(op: dict[str, Any]) -> list[str]:
    params = op.get("parameters") or []
    if not params:
        return []
    lines = ["| name | in | type | required | description |", "|---|---|---|---|---|"]
    for p in params:
        schema = p.get("schema", {})
        desc = p.get("description") or schema.get("description") or ""
        if not desc and p["in"] == "path":
            desc = PATH_PARAMETERS.get(p["name"], "")
        bounds = _bounds(schema)
        if bounds:
            desc = f"{desc} ({bounds})" if desc else bounds
        lines.append(f"| `{p['name']}` | {p['in']} | {_schema_type(schema)} | "
                     f"{'yes' if p.get('required') else 'no'} | {_cell(desc)} |")
    return ["", *lines]


def _body(op: dict[str, Any]) -> list[str]:
    body = op.get("requestBody")
    if not body:
        return []
    content: dict[str, Any] = body.get("content", {})
    types = ", ".join(f"`{t}`" for t in content)
    schemas = dict.fromkeys(_schema_type(c.get("schema", {})) for c in content.values())
    desc = body.get("description")
    text = f"**Body** ({types}): {' or '.join(f'`{s}`' for s in schemas)}"
    if desc:
        text += f" — {_cell(desc)}"
    if body.get("required"):
        text += " (required)"
    return ["", text + "."]


def _responses(op: dict[str, Any]) -> list[str]:
    items = []
    for code, resp in sorted(op.get("responses", {}).items()):
        content: dict[str, Any] = resp.get("content") or {}
        types = ", ".join(f"`{t}`" for t in content)
        desc = resp.get("description", "")
        if code == "422":
            desc = "invalid input (a `Status` naming the fields)"
        elif desc == "Successful Response":
            desc = "success"
        items.append(f"`{code}` {_cell(desc)}" + (f" ({types})" if types else ""))
    return ["", "**Responses**: " + "; ".join(items) + "."] if items else []


def _anchor(text: str) -> str:
    keep = [c for c in text.lower() if c.isalnum() or c in " -_"]
    return "".join(keep).replace(" ", "-")


def _families(doc: dict[str, Any]) -> dict[str, list[tuple[str, str, dict[str, Any]]]]:
    """Operations grouped by their first tag (else the path's first segment after /api/v1),
    families in :data:`FAMILY_ORDER`, operations by path then method."""
    families: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path in sorted(doc.get("paths", {})):
        ops = doc["paths"][path]
        for method in METHOD_ORDER:
            op = ops.get(method)
            if op is None:
                continue
            tags = op.get("tags") or [path.removeprefix("/api/v1/").split("/", 1)[0]]
            families.setdefault(str(tags[0]), []).append((method, path, op))
    rank = {name: i for i, name in enumerate(FAMILY_ORDER)}
    first = {name: i for i, name in enumerate(families)}
    ordered = sorted(families, key=lambda n: (rank.get(n, len(rank)), first[n]))
    return {name: families[name] for name in ordered}


def _schemas(doc: dict[str, Any]) -> list[str]:
    """The named request bodies, one table of fields each (FastAPI's validation-error
    schemas are left out: the wire shape is a Status, described above)."""
    out = ["## Schemas\n"]
    schemas: dict[str, Any] = doc.get("components", {}).get("schemas", {})
    for name in sorted(schemas):
        if name in ("HTTPValidationError", "ValidationError"):
            continue
        schema = schemas[name]
        required = set(schema.get("required", ()))
        lines = [f"### {name}", ""]
        if schema.get("description"):
            lines += [_cell(schema["description"]), ""]
        lines += ["| field | type | required | description |", "|---|---|---|---|"]
        for field, prop in schema.get("properties", {}).items():
            desc = prop.get("description") or ""
            bounds = _bounds(prop)
            if bounds:
                desc = f"{desc} ({bounds})" if desc else bounds
            lines.append(f"| `{field}` | {_schema_type(prop)} | "
                         f"{'yes' if field in required else 'no'} | {_cell(desc)} |")
        out.append("\n".join(lines) + "\n")
    return out if len(out) > 1 else []


def render_markdown(doc: dict[str, Any]) -> str:
    """``docs/api.md`` for the OpenAPI document ``doc``."""
    out = [INTRO]
    families = _families(doc)
    out.append("## Operations\n")
    out.append(" · ".join(f"[{name}](#{_anchor(name)})" for name in families) + "\n")
    for name, ops in families.items():
        out.append(f"## {name}\n")
        for method, path, op in ops:
            lines = [f"### `{method.upper()} {path}`", ""]
            summary = op.get("summary")
            if summary:
                lines.append(f"{_cell(summary)}.")
            description = (op.get("description") or "").strip()
            if description:
                lines += ["", description]
            lines += _parameters(op) + _body(op) + _responses(op)
            out.append("\n".join(lines) + "\n")
    out += _schemas(doc)
    return "\n".join(out)
