"""The region's /healthz, /readyz and StoreReadOnly conditions, on a real (sim) region."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from pincompute.kube.backends.embedded.persistence import SqliteLog
from pincompute.kube.errors import ApiError
from pincompute.kube.objects import get_condition
from pincompute.kube.resource import CONFIGMAPS
from pincompute.model.registry import MEMBERCLUSTERS
from pincompute.region import Region
from pincompute.regionhealth import CONDITION


async def test_readyz_and_the_condition_follow_the_stores(region_dir: Path,
                                                          monkeypatch: pytest.MonkeyPatch):
    region = await Region.open(region_dir, zones=2, nodes_per_zone=0, runtime="sim")
    await region.start()
    health = region.health
    assert health is not None
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=5) as http:
            assert (await http.get(health.url + "/readyz")).text == "ok\n"
            assert (await http.get(health.url + "/nope")).status_code == 404
        assert await health.write_conditions() == 0  # never failed: nothing written
        member = region.members[1]
        original = SqliteLog.commit

        def commit(self, puts, deletes, rv):
            if self is member.store._commit.log:
                raise OSError("No space left on device")
            return original(self, puts, deletes, rv)

        monkeypatch.setattr(SqliteLog, "commit", commit)
        with pytest.raises(ApiError):
            await member.client.create(CONFIGMAPS, {"metadata": {"name": "x"}},
                                       namespace="pincompute-system")
        assert health.problems() == [
            f"store of {member.name} is read-only: {member.store.read_only_reason}"]
        async with httpx.AsyncClient(trust_env=False, timeout=5) as http:
            answer = await http.get(health.url + "/readyz")
        assert answer.status_code == 503 and "No space left" in answer.text
        await health.write_conditions()
        for m in region.members:
            mc = await region.host.client.get(MEMBERCLUSTERS, m.name)
            cond = get_condition(mc, CONDITION)
            if m is member:
                assert cond["status"] == "True" and "No space left" in cond["message"]
            else:
                assert cond is None
        assert await health.write_conditions() == 0  # unchanged: no write
    finally:
        await region.close()
