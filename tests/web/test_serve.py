"""The console's files as the gateway serves them: the page, its modules, caching, no traversal."""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.testclient import TestClient

from pincompute.web import STATIC_DIR, console_router


def client() -> TestClient:
    app = FastAPI()
    app.include_router(console_router())
    return TestClient(app)


def test_the_page_is_served_at_the_root_with_a_same_origin_policy() -> None:
    answer = client().get("/")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert '<script type="module" src="/console/js/main.js">' in answer.text
    policy = answer.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy


def test_every_module_the_page_imports_is_served_as_javascript() -> None:
    web = client()
    main = (STATIC_DIR / "js" / "main.js").read_text()
    routed = {f"{name}.js" for name in re.findall(r'page\("(\w+)"\)', main)}
    assert routed == {p.name for p in (STATIC_DIR / "js" / "pages").glob("*.js")}
    seen: set[str] = set()
    todo = ["js/main.js", *(f"js/pages/{name}" for name in routed)]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        answer = web.get(f"/console/{path}")
        assert answer.status_code == 200, path
        assert answer.headers["content-type"].startswith("text/javascript"), path
        base = path.rsplit("/", 1)[0]
        for target in re.findall(r'(?:from|import\()\s*"(\.{1,2}/[^"]+)"', answer.text):
            parts = [*base.split("/"), *target.split("/")]
            resolved: list[str] = []
            for part in parts:
                if part == "..":
                    resolved.pop()
                elif part != ".":
                    resolved.append(part)
            todo.append("/".join(resolved))
    assert {"js/api.js", "js/livetable.js", "js/timeline.js", "js/charts.js"} <= seen


def test_vendored_libraries_are_in_the_package() -> None:
    web = client()
    for name in ("xterm.mjs", "addon-fit.mjs", "js-yaml.mjs", "xterm.css"):
        assert web.get(f"/console/vendor/{name}").status_code == 200, (
            f"{name} missing: run `make web-assets`")


def test_unchanged_files_answer_not_modified() -> None:
    web = client()
    first = web.get("/console/app.css")
    again = web.get("/console/app.css", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""


def test_unknown_and_escaping_paths_are_not_found() -> None:
    web = client()
    for path in ("/console/nope.js", "/console/../serve.py", "/console/%2e%2e/serve.py",
                 "/console/js/../../serve.py", "/console/"):
        answer = web.get(path)
        assert answer.status_code == 404, path
        assert "console_router" not in answer.text
    assert web.get("/console/nope.js").json()["reason"] == "NotFound"
