"""The console's modules in Chromium, without a region: the live table keeps its rows (an update
rewrites one row, a thousand rows draw in one frame), the deploy form maps the API's field paths
to its fields, the workload kinds read their status as the table says, and the watch client
follows a newline-delimited stream, resuming from the newest version and relisting on 410.

The page is the console's own (served by ``console_router`` under uvicorn); the watch test
answers from a small in-test collection route, since what is tested is the client's protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from pincompute.web import console_router
from tests.waiting import eventually
from tests.web.browser import launch, require_browser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Collection:
    """A collection route that answers watches the way the gateway does (for the client)."""

    def __init__(self) -> None:
        self.watches: list[str | None] = []
        self.lists = 0

    def obj(self, name: str, rv: int, replicas: int = 1) -> dict[str, Any]:
        return {"kind": "PinApp", "metadata": {"name": name, "uid": f"uid-{name}",
                                               "resourceVersion": str(rv)},
                "spec": {"replicas": replicas}, "status": {"readyReplicas": replicas}}

    def app(self) -> FastAPI:
        app = FastAPI()
        app.include_router(console_router())

        @app.get("/api/v1/projects/demo/pinapps")
        async def pinapps(request: Request) -> Response:
            if request.query_params.get("watch") != "true":
                self.lists += 1
                return JSONResponse({"metadata": {"resourceVersion": "20"},
                                     "items": [self.obj("c", 20)]})
            rv = request.query_params.get("resourceVersion")
            self.watches.append(rv)
            if rv is None:  # the first watch: a replay, then a change, then the stream ends
                lines = [{"type": "ADDED", "object": self.obj("a", 5)},
                         {"type": "ADDED", "object": self.obj("b", 7)},
                         {"type": "MODIFIED", "object": self.obj("a", 9, replicas=3)}]
            elif rv == "9":  # resumed from the newest seen: history is gone
                lines = [{"type": "ERROR", "object": {"kind": "Status", "code": 410,
                                                      "reason": "Expired", "message": "gone"}}]
            else:  # after the relist: one deletion, then nothing more
                lines = [{"type": "DELETED", "object": self.obj("c", 21)}]

            async def body() -> AsyncIterator[bytes]:
                for line in lines:
                    yield (json.dumps(line) + "\n").encode()
                if rv not in (None, "9"):
                    await asyncio.sleep(30)
            return StreamingResponse(body(), media_type="application/x-ndjson")
        return app


@pytest.fixture
async def page() -> AsyncIterator[tuple[Any, str, Collection]]:
    require_browser()
    from playwright.async_api import async_playwright

    collection = Collection()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(collection.app(), host="127.0.0.1", port=port,
                                           log_level="warning"))
    task = asyncio.create_task(server.serve())
    await eventually(lambda: asyncio.sleep(0, result=server.started), what="uvicorn started")
    url = f"http://127.0.0.1:{port}"
    try:
        async with async_playwright() as pw:
            browser = await launch(pw)
            tab = await browser.new_page()
            await tab.goto(url + "/#/signin")
            await tab.get_by_label("Token").wait_for()
            yield tab, url, collection
            await browser.close()
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)


async def test_the_live_table_rewrites_only_changed_rows_and_draws_a_thousand_at_once(
        page: tuple[Any, str, Collection]) -> None:
    tab, _, _ = page
    result = await tab.evaluate("""async () => {
        const { LiveTable } = await import("/console/js/livetable.js");
        const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
        const t = new LiveTable({ caption: "t", id: "t", columns: [
            { title: "Name", cell: (o) => o.name }, { title: "N", cell: (o) => String(o.n) }],
            sortKey: (o) => o.name, filter: (o) => !o.hidden });
        document.body.append(t.el);
        const start = performance.now();
        for (let i = 0; i < 1000; i++) {
            t.upsert(`k${i}`, { name: `w${String(i).padStart(4, "0")}`, n: 0 });
        }
        await frame();
        const drawn = performance.now() - start;
        const rows = () => [...t.el.querySelectorAll("tbody tr[data-key]")];
        const before = rows();
        t.upsert("k5", { name: "w0005", n: 7 });
        await frame();
        const after = rows();
        const same = before.every((tr, i) => tr === after[i]);
        t.upsert("k6", { name: "w0006", n: 0, hidden: true });
        t.remove("k7");
        await frame();
        return { count: before.length, drawn, same, cell: after[5].children[1].textContent,
                 first: after[0].children[0].textContent, visible: rows().length,
                 hiddenGone: !rows().some((tr) => tr.dataset.key === "k6") };
    }""")
    assert result["count"] == 1000 and result["first"] == "w0000"
    assert result["drawn"] < 1000, result
    assert result["same"], "an update replaced other rows"
    assert result["cell"] == "7"
    assert result["visible"] == 998 and result["hiddenGone"]


async def test_the_deploy_form_maps_api_fields_to_its_own(
        page: tuple[Any, str, Collection]) -> None:
    tab, _, _ = page
    mapped = await tab.evaluate("""async () => {
        const { formField } = await import("/console/js/pages/deploy.js");
        return ["metadata.name", "spec.replicas", "spec.template.spec.containers[0].image",
                "spec.template.spec.containers[0].resources.requests.memory",
                "spec.template.spec.containers[0].ports[0].containerPort", "spec.strategy"]
            .map(formField);
    }""")
    assert mapped == ["name", "replicas", "image", "memory", "ports", None]


async def test_each_kind_reads_ready_and_state_from_its_status(
        page: tuple[Any, str, Collection]) -> None:
    tab, _, _ = page
    states = await tab.evaluate("""async () => {
        const { BY_PLURAL } = await import("/console/js/kinds.js");
        const app = BY_PLURAL.pinapps, job = BY_PLURAL.pinjobs;
        return [
            [app.ready({ spec: { replicas: 3 }, status: { readyReplicas: 2 } }),
             app.state({ spec: { replicas: 3 }, status: { readyReplicas: 2 } })],
            [app.ready({ spec: { replicas: 3, stopped: true }, status: {} }),
             app.state({ spec: { replicas: 3, stopped: true }, status: {} })],
            [null, app.state({ spec: {},
                               status: { admission: { state: "Queued", position: 4 } } })],
            [job.ready({ spec: { completions: 5 }, status: { succeeded: 2 } }),
             job.state({ spec: { suspend: true }, status: {} })],
        ];
    }""")
    assert states == [[[2, 3], "Progressing"], [[0, 0], "Stopped"], [None, "Queued #4"],
                      [[2, 5], "Suspended"]]


async def test_the_watch_client_replays_resumes_and_relists_on_gone(
        page: tuple[Any, str, Collection]) -> None:
    tab, _, collection = page
    seen = await tab.evaluate("""async () => {
        const { watchList } = await import("/console/js/api.js");
        const abort = new AbortController();
        const log = [];
        const { items } = watchList("projects/demo/pinapps", { signal: abort.signal,
            onChange: (type, obj) =>
                log.push(type === "reset" ? "reset" : `${type} ${obj.metadata.name}`) });
        for (let i = 0; i < 100 && !log.includes("DELETED c"); i++) {
            await new Promise((r) => setTimeout(r, 50));
        }
        abort.abort();
        return { log, names: [...items.values()].map((o) => o.metadata.name) };
    }""")
    assert seen["log"] == ["ADDED a", "ADDED b", "MODIFIED a", "reset", "DELETED c"]
    assert seen["names"] == []
    assert collection.watches == [None, "9", "20"]
    assert collection.lists == 1
