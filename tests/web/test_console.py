"""The console in a real browser (Debian's Chromium under Playwright) against a real region.

One embedded region (process runtime: real processes, real logs, a real shell) behind the
gateway; the scenario a user lives through, in order: sign in, deploy an app from the form (a
bad name first: the message is on the field the API names), watch it become ready, scale it,
read its logs streaming, open a shell and run a command whose output appears, create a project
and a token for a viewer, then sign in as the viewer, who is refused in another project and in
their own (the page says why, nothing changes); last, roll the app back to a revision from its
page's revisions table. Main pages are screenshotted (the test's
directory and test-artifacts/console/) and checked with axe-core (no serious violations), at
laptop and phone widths, and the keyboard path (skip link, a dialog Escape closes) is tried.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from pincompute.gateway import Gateway
from pincompute.region import Region
from tests.waiting import eventually
from tests.web.browser import axe_violations, launch, require_browser, screenshot

pytestmark = pytest.mark.slow

TICKER = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.3; done"
LONG = 30_000  # ms: a pod starting on a loaded 2-core machine
CRON = """apiVersion: pincompute.io/v1alpha1
kind: PinCronJob
metadata:
  name: nightly
spec:
  schedule: "%s"
  suspend: true
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - name: main
              image: busybox
              command: ["echo", "hi"]
"""


def app_object(name: str, cpu: str) -> dict[str, Any]:
    return {"apiVersion": "pincompute.io/v1alpha1", "kind": "PinApp", "metadata": {"name": name},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [{
                "name": "main", "image": "busybox", "command": ["sleep", "3600"],
                "resources": {"requests": {"cpu": cpu, "memory": "16Mi"}}}]}}}}


@dataclass
class Env:
    region: Region
    url: str
    admin_token: str
    api: httpx.AsyncClient


@pytest.fixture
async def env(region_dir: Path) -> AsyncIterator[Env]:
    require_browser()
    region = await Region.open(region_dir, zones=1, nodes_per_cluster=1, runtime="process",
                               lease_duration=3, health_port=None,
                               node_options={"probe_scale": 0.2})
    try:
        await region.start()
        await region.ensure_project("demo")
        async with Gateway.start(region) as gw, httpx.AsyncClient(
                base_url=gw.url, timeout=30,
                headers={"Authorization": f"Bearer {gw.admin_token}"}) as api:
            yield Env(region, gw.url, gw.admin_token, api)
    finally:
        await region.close()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    require_browser()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await launch(pw)
        try:
            yield chromium
        finally:
            await chromium.close()


async def no_serious_violations(page: Any, what: str) -> None:
    violations = await axe_violations(page)
    assert not violations, f"{what}: {json.dumps(violations, indent=1)}"


async def sign_in(page: Any, url: str, token: str) -> None:
    await page.goto(url + "/")
    await page.get_by_label("Token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await page.locator("#who").get_by_text("Sign out").wait_for()


async def test_a_user_deploys_scales_debugs_and_a_viewer_is_refused(
        env: Env, browser: Any, tmp_path: Path) -> None:
    from playwright.async_api import expect

    shots = tmp_path / "screens"
    context = await browser.new_context(viewport={"width": 1280, "height": 860})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(f"{page.url}: {e}: {e.stack}"))

    # Sign in.
    await page.goto(env.url + "/")
    await page.get_by_label("Token").wait_for()
    await screenshot(page, "signin", shots)
    await no_serious_violations(page, "sign-in")
    await sign_in(page, env.url, env.admin_token)

    # Deploy from the form: the API's field errors land on the fields.
    await page.goto(env.url + "/#/projects/demo/deploy")
    await page.get_by_label("Name").fill("Bad_Name")
    await page.get_by_label("Image").fill("busybox")
    await page.get_by_label("Command").fill(TICKER)
    await page.get_by_role("button", name="Deploy app").click()
    await expect(page.locator("#f-name-error")).not_to_be_empty()
    await expect(page.locator("#f-name")).to_have_attribute("aria-invalid", "true")
    await screenshot(page, "deploy", shots)
    await no_serious_violations(page, "deploy")
    await page.get_by_label("Name").fill("ticker")
    await page.get_by_role("button", name="Deploy app").click()

    # It becomes ready, live.
    await expect(page.get_by_role("heading", name="App ticker")).to_be_visible()
    ready = page.locator("dl.summary dt:text-is('Ready') + dd")
    await expect(ready).to_have_text("1/1", timeout=LONG)

    # Scale it.
    await page.get_by_label("Replicas").fill("2")
    await page.get_by_role("button", name="Scale").click()
    await expect(ready).to_have_text("2/2", timeout=LONG)
    await expect(page.locator("#pods tbody tr")).to_have_count(2, timeout=LONG)
    await screenshot(page, "workload", shots)
    await no_serious_violations(page, "workload")

    # A disruptive operation asks first; Escape says no and nothing happens.
    await page.get_by_role("button", name="Stop").click()
    await expect(page.get_by_role("dialog")).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(page.get_by_role("dialog")).to_have_count(0)
    app = (await env.api.get("/api/v1/projects/demo/pinapps/ticker")).json()
    assert not app["spec"].get("stopped") and app["spec"]["replicas"] == 2
    await page.get_by_role("button", name="Pause").click()
    await page.get_by_role("button", name="Resume").click()
    await expect(page.get_by_role("button", name="Pause")).to_be_visible()

    # Logs stream in.
    await page.get_by_role("link", name="Live logs").click()
    logs = page.locator("#logs")
    await expect(logs).to_contain_text("tick", timeout=LONG)
    first = (await logs.text_content() or "").count("\n")
    await page.wait_for_function(
        f"() => document.querySelector('#logs').textContent.split('\\n').length > {first + 3}")
    await screenshot(page, "logs", shots)
    await no_serious_violations(page, "logs")
    await page.get_by_label("Search").fill("tick 2")
    await page.wait_for_function("""() => {
        const lines = document.querySelector('#logs').textContent.trim().split('\\n');
        return lines.length > 0 && lines.every((line) => line.includes('tick 2'));
    }""")
    await page.get_by_role("button", name="Pause").click()
    await page.get_by_label("Search").fill("")
    held = await logs.text_content()
    await page.wait_for_timeout(1000)
    assert await logs.text_content() == held, "the view moved while paused"
    await page.get_by_role("button", name="Resume").click()
    await expect(logs).not_to_have_text(held or "")

    # A shell: a command's output appears in the terminal.
    await page.go_back()
    await page.locator("#pods").get_by_role("link", name="Shell").first.click()
    await expect(page.get_by_role("status").filter(has_text="Connected")).to_be_visible(
        timeout=LONG)
    await page.locator("#terminal").click()
    await page.keyboard.type("echo console-$((6*7))\n")
    await expect(page.locator("#terminal .xterm-rows")).to_contain_text("console-42",
                                                                       timeout=LONG)
    await screenshot(page, "shell", shots)
    await no_serious_violations(page, "shell")

    # YAML pasted: a bad schedule is named, then the fixed manifest is applied.
    await page.goto(env.url + "/#/projects/demo/deploy")
    await page.get_by_label("Manifest").fill(CRON % "every night")
    await page.get_by_role("button", name="Apply").click()
    await expect(page.get_by_role("alert").filter(has_text="spec.schedule")).to_be_visible()
    await page.get_by_label("Manifest").fill(CRON % "0 3 * * *")
    await page.get_by_role("button", name="Apply").click()
    await expect(page.get_by_role("heading", name="Cron job nightly")).to_be_visible()
    await page.get_by_role("button", name="Run now").click()
    await expect(page.locator("p.result")).to_contain_text("Run now: done")

    # The workload list, its events, at laptop and phone widths; keyboard first stop.
    await page.goto(env.url + "/#/projects/demo/workloads")
    await expect(page.locator("#workloads tbody tr[data-key]")).to_have_count(2)
    await expect(page.locator("#workloads")).to_contain_text("2/2")
    await screenshot(page, "workloads", shots)
    await no_serious_violations(page, "workloads")
    await page.reload()
    await expect(page.locator("#workloads")).to_contain_text("nightly")
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.className") == "skip"
    await page.keyboard.press("Enter")
    assert await page.evaluate("document.activeElement.id") == "main"
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.reload()
    await expect(page.locator("#workloads")).to_contain_text("ticker")
    assert await page.evaluate(
        "document.documentElement.scrollWidth <= window.innerWidth + 1"), "page wider than phone"
    await screenshot(page, "workloads-phone", shots)
    await page.set_viewport_size({"width": 1280, "height": 860})

    # A project and a viewer's token for it.
    await page.goto(env.url + "/#/projects")
    await page.get_by_label("Name").fill("team-b")
    await page.get_by_role("button", name="Create project").click()
    await expect(page.get_by_role("heading", name="Project team-b")).to_be_visible()
    await page.locator("#t-user").fill("vic")
    await page.locator("#t-role").select_option("viewer")
    await page.get_by_role("button", name="Create token").click()
    viewer_token = await page.locator("#new-token").input_value()
    assert viewer_token.startswith("pct_")
    await expect(page.locator("#tokens")).to_contain_text("vic")
    await page.get_by_label("Project", exact=True).select_option("demo")
    await expect(page.get_by_role("heading", name="Workloads")).to_be_visible()
    await page.go_back()

    # A quota in team-b: one app fits, the next waits; its page says why, the chart shows both.
    quota = {"ondemand": {"cpu": "200m", "memory": "1Gi"}}
    assert (await env.api.put("/api/v1/projects/team-b/quota", json=quota)).status_code == 200
    for name, cpu in (("small", "100m"), ("big", "1")):
        created = await env.api.post("/api/v1/projects/team-b/pinapps", json=app_object(name, cpu))
        assert created.status_code == 201, created.text
    await page.goto(env.url + "/#/projects/team-b/workloads/pinapps/big")
    why = page.get_by_role("region", name="Why is this pending")
    await expect(why).to_contain_text("Queued", timeout=LONG)
    await expect(why).to_contain_text("cpu")
    await screenshot(page, "pending", shots)
    await page.goto(env.url + "/#/projects/team-b")
    await expect(page.locator("svg.chart")).to_contain_text("ondemand cpu")
    await expect(page.locator("svg.chart")).to_contain_text("100m", timeout=LONG)
    await screenshot(page, "project", shots)
    await no_serious_violations(page, "project")

    # The viewer of team-b: refused in demo and refused to write in team-b; nothing changes.
    # (signed in by a link carrying the token, as `pincompute up` may print one)
    viewer = await (await browser.new_context()).new_page()
    await viewer.goto(f"{env.url}/#token={viewer_token}")
    await viewer.locator("#who").get_by_text("Sign out").wait_for()
    assert "token" not in viewer.url
    await viewer.goto(env.url + "/#/projects/demo/workloads/pinapps/ticker")
    await expect(viewer.get_by_role("alert")).to_contain_text("You may not see demo")
    await expect(viewer.get_by_role("button", name="Scale")).to_have_count(0)
    await viewer.goto(env.url + "/#/projects/team-b/deploy")
    await viewer.get_by_label("Name").fill("sneaky")
    await viewer.get_by_label("Image").fill("busybox")
    await viewer.get_by_role("button", name="Deploy app").click()
    await expect(viewer.get_by_role("alert").filter(has_text="You may not deploy to team-b")
                 ).to_be_visible()
    names = {a["metadata"]["name"]
             for a in (await env.api.get("/api/v1/projects/team-b/pinapps")).json()["items"]}
    assert names == {"small", "big"}
    app = (await env.api.get("/api/v1/projects/demo/pinapps/ticker")).json()
    assert app["spec"]["replicas"] == 2
    await screenshot(viewer, "refused", shots)

    # A member added and removed; the viewer's token revoked: their next call signs them out.
    await page.goto(env.url + "/#/projects/team-b")
    await page.locator("#m-user").fill("carol")
    await page.locator("#m-role").select_option("editor")
    await page.get_by_role("button", name="Add member").click()
    await expect(page.locator("#members")).to_contain_text("carol")
    await page.get_by_role("button", name="Remove carol").click()
    await page.get_by_role("dialog").get_by_role("button", name="Remove").click()
    await expect(page.locator("#members")).not_to_contain_text("carol")
    await page.locator("#tokens").get_by_role("button", name="Revoke").click()
    await page.get_by_role("dialog").get_by_role("button", name="Revoke").click()
    await expect(page.locator("#tokens")).not_to_contain_text("vic")
    await viewer.goto(env.url + "/#/projects/team-b/workloads")
    await expect(viewer.get_by_label("Token")).to_be_visible()

    async def denial_audited() -> bool:
        audit = (await env.api.get("/api/v1/audit")).json().get("items", [])
        return any(e.get("user") == "vic" and e.get("code") == 403 for e in audit)
    await eventually(denial_audited, timeout=10, what="the viewer's denial in the audit log")

    # The project's events timeline, live.
    await page.goto(env.url + "/#/projects/demo/events")
    await expect(page.locator(".timeline li").first).to_be_visible(timeout=LONG)
    newest = await page.locator(".timeline li").first.text_content()
    scaled = await env.api.post("/api/v1/projects/demo/pinapps/ticker/scale", json={"replicas": 1})
    assert scaled.status_code == 200, scaled.text
    await expect(page.locator(".timeline li").first).not_to_have_text(newest or "", timeout=LONG)
    await screenshot(page, "events", shots)
    await no_serious_violations(page, "events")

    # Operators: the clusters, a node cordoned and uncordoned, the audit log with the denial.
    await page.goto(env.url + "/#/platform/clusters")
    await expect(page.locator("#clusters tbody tr[data-key]")).to_have_count(1)
    await screenshot(page, "clusters", shots)
    await no_serious_violations(page, "clusters")
    await page.locator("#clusters").get_by_role("link").first.click()
    nodes = page.locator("#nodes")
    await nodes.get_by_role("button", name="Cordon").click()
    await expect(nodes).to_contain_text("Cordoned")
    await nodes.get_by_role("button", name="Uncordon").click()
    await expect(nodes.get_by_role("button", name="Cordon")).to_be_visible()
    for platform_page in ("nodepools", "nodeimages", "rotations"):
        await page.goto(env.url + f"/#/platform/{platform_page}")
        await expect(page.locator(f"#{platform_page}")).to_be_visible()
    await expect(page.locator("#rotations")).to_contain_text("Nothing here yet")
    await page.goto(env.url + "/#/platform/nodepools")
    await expect(page.locator("#nodepools tbody tr[data-key]")).to_have_count(1)
    await no_serious_violations(page, "node pools")
    await page.goto(env.url + "/#/platform/audit?result=denied")
    await expect(page.locator("#audit")).to_contain_text("vic")

    # Revisions: a new image is revision 2; from the page, roll back to revision 1, which
    # comes back as revision 3 and current.
    async def image_changed() -> bool:
        app = (await env.api.get("/api/v1/projects/demo/pinapps/ticker")).json()
        app["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:2"
        put = await env.api.put("/api/v1/projects/demo/pinapps/ticker", json=app)
        return put.status_code == 200
    await eventually(image_changed, timeout=10, what="ticker's image changed")
    await page.goto(env.url + "/#/projects/demo/workloads/pinapps/ticker")
    revisions = page.locator("#revisions")
    await expect(revisions.locator("tr[data-revision='2']")).to_contain_text("current",
                                                                             timeout=LONG)
    await expect(revisions.locator("tr[data-revision='1']")).not_to_contain_text("current")
    await revisions.get_by_role("button", name="Roll back to this revision").click()
    await page.get_by_role("dialog").get_by_role("button", name="Roll back").click()
    back = revisions.locator("tr[data-revision='3']")
    await expect(back).to_contain_text("current", timeout=LONG)
    await expect(back).to_contain_text("busybox:2 → busybox")
    await expect(revisions.locator("tbody tr")).to_have_count(2)  # 1 moved to 3, not copied
    app = (await env.api.get("/api/v1/projects/demo/pinapps/ticker")).json()
    assert app["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox"
    await no_serious_violations(page, "revisions")
    await no_serious_violations(page, "audit")
    assert not errors, errors
