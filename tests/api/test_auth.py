"""The authorization matrix: each role against each route family; tokens and revocation."""

from __future__ import annotations

import os
import stat

import httpx

from tests.api.conftest import ApiEnv
from tests.api.support import pinapp
from tests.waiting import eventually

A = "/api/v1/projects/demo"
B = "/api/v1/projects/other"

# (family, method, path, body) — the route families of DESIGN §10 a tenant may touch.
READS = [
    ("workloads", "GET", f"{A}/pinapps", None),
    ("workload", "GET", f"{A}/pinapps/web", None),
    ("pods", "GET", f"{A}/pinapps/web/pods", None),
    ("project", "GET", A, None),
    ("members", "GET", f"{A}/members", None),
    ("usage", "GET", f"{A}/usage", None),
]
WRITES = [
    ("create", "POST", f"{A}/pinapps", pinapp("made")),
    ("patch", "PATCH", f"{A}/pinapps/web", {"metadata": {"labels": {"x": "y"}}}),
    ("operation", "POST", f"{A}/pinapps/web/scale", {"replicas": 1}),
    ("delete", "DELETE", f"{A}/pinapps/gone", None),
]
PROJECT_ADMIN = [
    ("add member", "POST", f"{A}/members", {"user": "zed", "role": "viewer"}),
    ("project token", "POST", "/api/v1/tokens", {"user": "zed", "project": "demo"}),
]
PLATFORM_ADMIN = [
    ("create project", "POST", "/api/v1/projects", {"metadata": {"name": "p2"}, "spec": {}}),
    ("quota", "PUT", f"{A}/quota", {"ondemand": {"cpu": "1"}}),
    ("audit", "GET", "/api/v1/audit", None),
    ("node image", "POST", "/api/v1/nodeimages", {"metadata": {"name": "i"},
                                                  "spec": {"version": "1.0.0"}}),
    ("cordon", "POST", "/api/v1/clusters/zone-a-1/nodes/zone-a-1-general-0/cordon", None),
    ("admin token", "POST", "/api/v1/tokens", {"user": "zed", "admin": True}),
]
ROLES = ["viewer", "editor", "admin"]
ALLOWED = {"viewer": {"read"}, "editor": {"read", "write"},
           "admin": {"read", "write", "project-admin"}}


async def _call(c: httpx.AsyncClient, method: str, path: str, body: object) -> httpx.Response:
    return await c.request(method, path, json=body) if body is not None else \
        await c.request(method, path)


async def test_authorization_matrix(api: ApiEnv) -> None:
    admin = api.client
    r = await admin.post("/api/v1/projects", json={"metadata": {"name": "other"}, "spec": {
        "members": [{"user": "olga", "role": "admin"}]}})
    assert r.status_code == 201
    await admin.post(f"{A}/pinapps", json=pinapp("web"))
    await admin.post(f"{B}/pinapps", json=pinapp("secret"))
    await eventually(lambda: _ok(admin, f"{B}/pinapps/secret"), what="apps cached")

    for role in ROLES:
        token = await api.token(user=f"{role}-user", project="demo", role=role)
        async with api.as_token(token) as c:
            for group, routes in (("read", READS), ("write", WRITES),
                                  ("project-admin", PROJECT_ADMIN)):
                for family, method, path, body in routes:
                    r = await _call(c, method, path, body)
                    if group in ALLOWED[role]:
                        assert r.status_code not in (401, 403), (role, family, r.text)
                    else:
                        assert r.status_code == 403, (role, family, r.status_code, r.text)
                        assert r.json()["reason"] == "Forbidden"
                        assert f"needs role {'editor' if group == 'write' else 'admin'}" \
                            in r.json()["message"], r.json()["message"]
            for family, method, path, body in PLATFORM_ADMIN:
                r = await _call(c, method, path, body)
                assert r.status_code == 403, (role, family, r.text)
                assert "needs platform admin" in r.json()["message"]
            # Another project is invisible: the same 403 whether it exists or not.
            for path in (f"{B}/pinapps", f"{B}/pinapps/secret", B, f"{B}/usage",
                         "/api/v1/projects/nothere/pinapps"):
                r = await c.get(path)
                assert r.status_code == 403, (role, path)
            r = await c.get("/api/v1/projects")
            assert [p["metadata"]["name"] for p in r.json()["items"]] == ["demo"]
            r = await c.get(f"{B}/pinapps", params={"watch": "true"})
            assert r.status_code == 403

    # Members by Project membership (unscoped tokens): olga administers "other" only.
    olga = await api.token(user="olga")
    async with api.as_token(olga) as c:
        assert (await c.get(f"{B}/pinapps/secret")).status_code == 200
        assert (await c.get(f"{A}/pinapps")).status_code == 403
        r = await c.post("/api/v1/tokens", json={"user": "x", "project": "demo"})
        assert r.status_code == 403

    # Denials are audited, with who and what.
    r = await admin.get("/api/v1/audit", params={"result": "denied", "user": "viewer-user"})
    denied = r.json()["items"]
    assert denied and all(d["code"] == 403 for d in denied)
    assert any(d["verb"] == "POST" and d["resource"] == "pinapps" for d in denied)
    assert any(d["verb"] == "GET" and d["project"] == "other" for d in denied)


async def test_tokens_authenticate_and_revocation_is_immediate(api: ApiEnv) -> None:
    async with httpx.AsyncClient(base_url=api.url) as anon:
        r = await anon.get(f"{A}/pinapps")
        assert r.status_code == 401 and r.json()["reason"] == "Unauthorized"
        r = await anon.get(f"{A}/pinapps", headers={"Authorization": "Bearer pct_nope"})
        assert r.status_code == 401
        forged = api.admin_token[:-4] + "AAAA"
        r = await anon.get(f"{A}/pinapps", headers={"Authorization": f"Bearer {forged}"})
        assert r.status_code == 401
        assert (await anon.get("/healthz")).status_code == 200
        assert (await anon.get("/readyz")).status_code == 200

    r = await api.client.post("/api/v1/tokens", json={"user": "eve", "project": "demo",
                                                      "role": "editor"})
    assert r.status_code == 201
    created = r.json()
    token, token_id = created["token"], created["id"]
    assert token.startswith(f"pct_{token_id}_")
    listed = (await api.client.get("/api/v1/tokens")).json()["items"]
    assert any(t["id"] == token_id and t["user"] == "eve" for t in listed)
    assert all("token" not in t for t in listed)
    async with api.as_token(token) as eve:
        assert (await eve.get(f"{A}/pinapps")).status_code == 200
        assert (await eve.get("/api/v1/tokens/self")).json()["user"] == "eve"
        r = await api.client.delete(f"/api/v1/tokens/{token_id}")
        assert r.status_code == 200
        # At once: no waiting for anything.
        r = await eve.get(f"{A}/pinapps")
        assert r.status_code == 401
    r = await api.client.delete(f"/api/v1/tokens/{token_id}")
    assert r.status_code == 404
    r = await api.client.post("/api/v1/tokens", json={"user": "bad user!"})
    assert r.status_code == 422 and r.json()["details"]["causes"][0]["field"] == "body.user"

    # The admin token file is the owner's alone.
    path = api.gateway.admin_token_file
    assert path is not None and path.read_text().strip() == api.admin_token
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


async def _ok(c: httpx.AsyncClient, path: str) -> bool:
    return (await c.get(path)).status_code == 200
