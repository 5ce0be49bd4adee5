"""The audit log: mutations and denials recorded, filtered, kept across restarts."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import orjson

from pincompute.api.audit import AuditLog
from tests.api.conftest import ApiEnv
from tests.api.support import pinapp

A = "/api/v1/projects/demo"


async def test_mutations_and_denials_are_audited(api: ApiEnv) -> None:
    c = api.client
    await c.post(f"{A}/pinapps", json=pinapp("web"))
    await c.post(f"{A}/pinapps", json={"metadata": {"name": "bad"}, "spec": {}})
    await c.get(f"{A}/pinapps")  # reads are not audited
    viewer = await api.token(user="vera", project="demo", role="viewer")
    async with api.as_token(viewer) as v:
        await v.delete(f"{A}/pinapps/web")

    items = (await c.get("/api/v1/audit", params={"project": "demo"})).json()["items"]
    assert [(i["verb"], i["name"], i["result"], i["code"]) for i in items] == [
        ("DELETE", "web", "denied", 403),
        ("POST", "bad", "failed", 422),
        ("POST", "web", "allowed", 201),
    ]
    denied = items[0]
    assert denied["user"] == "vera" and denied["resource"] == "pinapps"
    assert "needs role editor" in denied["reason"]
    assert denied["route"] == "/api/v1/projects/{project}/pinapps/{name}"
    assert items[2]["user"] == "admin" and items[2]["time"].endswith("Z")
    only = (await c.get("/api/v1/audit", params={"user": "vera"})).json()["items"]
    assert len(only) == 1
    since = items[1]["time"]
    recent = (await c.get("/api/v1/audit", params={"since": since, "project": "demo"})
              ).json()["items"]
    assert [i["name"] for i in recent] == ["web", "bad"]
    r = await c.get("/api/v1/audit", params={"since": "yesterday"})
    assert r.status_code == 422


async def test_the_log_is_an_append_only_private_file(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    log = AuditLog(path=path)
    await log.start()
    log.record(user="u", verb="POST", route="/r", path="/p", project="demo",
               resource="pinapps", name="a", code=201, result="allowed")
    await log.stop()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    lines = path.read_bytes().splitlines()
    assert orjson.loads(lines[0])["name"] == "a"
    again = AuditLog(path=path)
    await again.start()
    again.record(user="u", verb="DELETE", route="/r", path="/p", project="demo",
                 resource="pinapps", name="a", code=200, result="allowed")
    assert [r["verb"] for r in again.query()] == ["DELETE", "POST"]
    await again.stop()
    assert len(path.read_bytes().splitlines()) == 2
