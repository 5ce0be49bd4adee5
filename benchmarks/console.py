"""The web console with a thousand workloads, in a real browser (issue 15, ``console.py``).

An embedded region (sim nodes) runs behind the gateway in this process; ``--workloads``
PinApps (no replicas, so nothing but the control plane works on them) are created on the host
and left to settle (every one admitted). Then Debian's Chromium, driven by Playwright, opens the
console's workload list of the project, signed in with the admin token:

``first_render_ms``   navigation start to the frame in which the table holds every workload
                      (the page's own clock; median of ``--loads`` loads); on the way,
                      ``page_ready_ms`` (the page and its modules loaded: DOMContentLoaded)
                      and ``stream_open_ms`` (the PinApps watch answered)
``update_p50_ms``     one PinApp paused through the API (from this process) until its row
                      says ``Paused`` in the browser (wall clocks of one machine; median of
                      ``--updates``, one after the other)
``burst_ms``          every other PinApp paused at once (16 writers) until every row says so
``max_frame_gap_ms``  the longest gap between two animation frames during the burst: how
                      long the page was unresponsive at worst (``max_frame_gap_idle_ms``:
                      the same over 2 s with nothing changing, the machine's own noise;
                      ``max_long_task_ms``: the page's own longest task during the burst, 0
                      when none took over 50 ms — a gap without one is the machine's CPU
                      going elsewhere, not the page's work)

**Baseline**, in the same run: the same list fetched by the command line
(``pincompute get pinapps -o json``; ``baseline_tool`` names it) — ``baseline_list_ms``,
median of ``--loads``; and the same
changes seen by a watch stream read in this process (``baseline_update_p50_ms``,
``baseline_burst_ms``): what a program sees, without drawing anything.

Run: ``python benchmarks/console.py [--quick] [--workloads N]``. The last line printed is one
JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from pincompute.api.context import ApiSettings
from pincompute.gateway import Gateway
from pincompute.model.registry import PINAPPS
from pincompute.region import Region

CHROMIUM = os.environ.get("PINCOMPUTE_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PROJECT = "bench"

# Installed before the console's own scripts: signs in, and timestamps what the table shows.
OBSERVER = """
sessionStorage.setItem("pincompute.token", %(token)s);
localStorage.setItem("pincompute.project", %(project)s);
window.__bench = { full: null, seen: {}, want: null, gaps: [], last: 0, watching: false,
                   tasks: [] };
new PerformanceObserver((list) => {
  const b = window.__bench;
  if (b.watching) for (const e of list.getEntries()) b.tasks.push(e.duration);
}).observe({ type: "longtask" });
const scan = (tr) => {
  const b = window.__bench;
  if (!b.want || !tr || !tr.dataset) return;
  const state = tr.children[3] ? tr.children[3].textContent : "";
  if (state.startsWith(b.want) && !(tr.dataset.key in b.seen)) b.seen[tr.dataset.key] = Date.now();
};
const frame = (t) => {
  const b = window.__bench;
  if (b.full === null
      && document.querySelectorAll("#workloads tbody tr[data-key]").length >= %(count)d) {
    b.full = performance.now();
  }
  if (b.watching && b.last) b.gaps.push(t - b.last);
  b.last = t;
  requestAnimationFrame(frame);
};
requestAnimationFrame(frame);
new MutationObserver((records) => {
  for (const r of records) scan(r.target.closest ? r.target.closest("tr") : null);
}).observe(document, { childList: true, subtree: true });
"""


def app(name: str) -> dict[str, Any]:
    return {"apiVersion": "pincompute.io/v1alpha1", "kind": "PinApp",
            "metadata": {"name": name, "labels": {"bench": "console"}},
            "spec": {"replicas": 0, "template": {"spec": {"containers": [
                {"name": "main", "image": "busybox", "command": ["sleep", "3600"]}]}}}}


@contextlib.asynccontextmanager
async def region_with_gateway(workloads: int) -> AsyncIterator[tuple[Region, Gateway]]:
    base = Path(tempfile.mkdtemp(prefix="pincompute-console-bench-"))
    base.chmod(0o711)
    region = await Region.open(base / "data", zones=1, nodes_per_cluster=1, runtime="sim",
                               lease_duration=5, health_port=None)
    try:
        await region.start()
        await region.ensure_project(PROJECT)
        sem = asyncio.Semaphore(32)

        async def create(i: int) -> None:
            async with sem:
                await region.host.client.create(PINAPPS, app(f"app-{i:04d}"), namespace=PROJECT)
        await asyncio.gather(*(create(i) for i in range(workloads)))
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            items = (await region.host.client.list(PINAPPS, namespace=PROJECT)).items
            if sum(1 for o in items if (o.get("status") or {}).get("admission")) >= workloads:
                break
            await asyncio.sleep(0.5)
        else:
            raise SystemExit("the PinApps were not all admitted within 300 s")
        # The limiter is not what is measured: a thousand writes in a burst must all land.
        settings = ApiSettings(requests_per_second=1_000_000, mutations_per_second=1_000_000)
        async with Gateway.start(region, listen="127.0.0.1:0", settings=settings) as gw:
            yield region, gw
    finally:
        await region.close()
        shutil.rmtree(base, ignore_errors=True)


def cli_list(url: str, token: str) -> tuple[str, float]:
    """The baseline list: the same workloads read by `pincompute get pinapps -o json`."""
    env = {**os.environ, "PINCOMPUTE_SERVER": url, "PINCOMPUTE_TOKEN": token,
           "PINCOMPUTE_PROJECT": PROJECT}
    command = [sys.executable, "-m", "pincompute.cli.main", "get", "pinapps", "-o", "json"]
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, timeout=120)
    elapsed = time.perf_counter() - start
    if result.returncode != 0 or not json.loads(result.stdout):
        raise SystemExit(f"the CLI baseline failed: {result.stderr.decode()[-2000:]}")
    return "cli", elapsed * 1000


class WatchBaseline:
    """A watch stream read in this process: when each change arrived (wall clock)."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.seen: dict[tuple[str, bool], float] = {}
        self.task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()
        self.changed = asyncio.Event()

    async def run(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=None, headers={
                "Authorization": f"Bearer {self.token}"}) as client, client.stream(
                "GET", f"/api/v1/projects/{PROJECT}/pinapps", params={"watch": "true"}) as r:
            self.ready.set()
            async for line in r.aiter_lines():
                if not line:
                    continue
                obj = json.loads(line)["object"]
                key = (obj["metadata"]["name"], bool(obj["spec"].get("paused")))
                if key not in self.seen:
                    self.seen[key] = time.time()
                    self.changed.set()

    async def wait(self, keys: list[tuple[str, bool]]) -> float:
        """The latest arrival of ``keys`` (wall clock), once all have arrived."""
        while not all(k in self.seen for k in keys):
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 60)
        return max(self.seen[k] for k in keys)


async def pause(client: httpx.AsyncClient, name: str, paused: bool) -> None:
    r = await client.patch(f"/api/v1/projects/{PROJECT}/pinapps/{name}",
                           content=json.dumps({"spec": {"paused": paused}}),
                           headers={"Content-Type": "application/merge-patch+json"})
    r.raise_for_status()


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    n = args.workloads
    names = [f"app-{i:04d}" for i in range(n)]
    async with region_with_gateway(n) as (_, gw), async_playwright() as pw, httpx.AsyncClient(
            base_url=gw.url, timeout=60,
            headers={"Authorization": f"Bearer {gw.admin_token}"}) as client:
        tool, _ = await asyncio.to_thread(cli_list, gw.url, gw.admin_token)  # warm-up
        baseline_lists = [(await asyncio.to_thread(cli_list, gw.url, gw.admin_token))[1]
                          for _ in range(args.loads)]
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        await context.add_init_script(OBSERVER % {"token": json.dumps(gw.admin_token),
                                                  "project": json.dumps(PROJECT), "count": n})
        page = await context.new_page()
        target = f"{gw.url}/#/projects/{PROJECT}/workloads"
        renders: list[float] = []
        ready: list[float] = []
        opened: list[float] = []
        for _ in range(args.loads):
            await page.goto("about:blank")
            await page.goto(target)
            await page.wait_for_function("() => window.__bench.full !== null", timeout=60_000)
            renders.append(await page.evaluate("window.__bench.full"))
            ready.append(await page.evaluate(
                "performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"))
            opened.append(await page.evaluate(f"""Math.max(...performance.getEntriesByType('mark')
                .filter((m) => m.name.endsWith('/{PROJECT}/pinapps')).map((m) => m.startTime))"""))

        watch = WatchBaseline(gw.url, gw.admin_token)
        watch.task = asyncio.create_task(watch.run())
        await asyncio.wait_for(watch.ready.wait(), 30)
        await page.evaluate("window.__bench.want = 'Paused'")
        updates, baseline_updates = [], []
        for name in names[: args.updates]:
            key = await page.evaluate(f"""() => [...document.querySelectorAll(
                '#workloads tbody tr[data-key]')].find((tr) =>
                tr.children[0].textContent === {json.dumps(name)}).dataset.key""")
            sent = time.time()
            await pause(client, name, True)
            await page.wait_for_function(f"() => {json.dumps(key)} in window.__bench.seen")
            updates.append(await page.evaluate(f"window.__bench.seen[{json.dumps(key)}]")
                           - sent * 1000)
            baseline_updates.append((await watch.wait([(name, True)]) - sent) * 1000)

        # The burst: every other app paused at once; the page must draw them all and keep
        # drawing frames meanwhile.
        rest = names[args.updates:]
        # A control: the longest frame gap with nothing changing, for as long as a burst of
        # writes takes this process to send without the page (a busy machine has gaps too).
        await page.evaluate("""() => { const b = window.__bench; b.gaps = []; b.last = 0;
            b.watching = true; }""")
        await asyncio.sleep(2)
        idle_gaps = await page.evaluate("window.__bench.gaps")
        await page.evaluate("""() => { const b = window.__bench; b.seen = {}; b.gaps = [];
            b.last = 0; b.watching = true; b.tasks = []; }""")
        sem = asyncio.Semaphore(16)

        async def pause_one(name: str) -> None:
            async with sem:
                await pause(client, name, True)
        started = time.time()
        await asyncio.gather(*(pause_one(name) for name in rest))
        await page.wait_for_function(
            f"() => Object.keys(window.__bench.seen).length >= {len(rest)}", timeout=120_000)
        seen = await page.evaluate("Object.values(window.__bench.seen)")
        gaps = await page.evaluate("window.__bench.gaps")
        tasks = await page.evaluate("window.__bench.tasks")
        burst_ms = max(seen) - started * 1000
        baseline_burst_ms = (await watch.wait([(name, True) for name in rest]) - started) * 1000
        watch.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watch.task
        await browser.close()
    return {
        "workloads": n, "first_render_ms": round(statistics.median(renders), 1),
        "page_ready_ms": round(statistics.median(ready), 1),
        "stream_open_ms": round(statistics.median(opened), 1),
        "baseline_list_ms": round(statistics.median(baseline_lists), 1), "baseline_tool": tool,
        "update_p50_ms": round(statistics.median(updates), 1),
        "baseline_update_p50_ms": round(statistics.median(baseline_updates), 1),
        "burst_updates": len(rest), "burst_ms": round(burst_ms, 1),
        "baseline_burst_ms": round(baseline_burst_ms, 1),
        "max_frame_gap_ms": round(max(gaps or [0]), 1),
        "max_frame_gap_idle_ms": round(max(idle_gaps or [0]), 1),
        "max_long_task_ms": round(max(tasks or [0]), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 workloads, 5 updates")
    parser.add_argument("--workloads", type=int)
    parser.add_argument("--updates", type=int)
    parser.add_argument("--loads", type=int)
    args = parser.parse_args()
    args.workloads = args.workloads or (200 if args.quick else 1000)
    args.updates = min(args.workloads // 2, args.updates or (5 if args.quick else 20))
    args.loads = args.loads or (1 if args.quick else 3)
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing (tools/system-deps.sh installs chromium)")
    figures = asyncio.run(measure(args))
    print(f"machine: {platform.machine()} {os.cpu_count()} cpus, "
          f"python {platform.python_version()}")
    print(f"{figures['workloads']} workloads: page ready {figures['page_ready_ms']} ms, stream "
          f"open {figures['stream_open_ms']} ms, first render {figures['first_render_ms']} ms "
          f"(the list by {figures['baseline_tool']}: {figures['baseline_list_ms']} ms)")
    print(f"one change on screen p50 {figures['update_p50_ms']} ms (watch stream "
          f"{figures['baseline_update_p50_ms']} ms); {figures['burst_updates']} at once "
          f"{figures['burst_ms']} ms (watch stream {figures['baseline_burst_ms']} ms), "
          f"longest frame gap {figures['max_frame_gap_ms']} ms "
          f"(idle {figures['max_frame_gap_idle_ms']} ms; longest task of the page "
          f"{figures['max_long_task_ms']} ms)")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
