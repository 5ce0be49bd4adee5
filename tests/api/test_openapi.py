"""The OpenAPI document: the committed copy is the app's, and no input makes a 500."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from pincompute.api.apidoc import FAMILY_ORDER, render_markdown
from pincompute.api.context import ApiSettings
from pincompute.api.openapi import openapi_document, render, render_api_md
from tests.api.conftest import api_env

ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


def test_docs_openapi_json_is_current() -> None:
    committed = (ROOT / "docs" / "openapi.json").read_bytes()
    assert committed == render(), (
        "docs/openapi.json is stale: run `python -m pincompute.api.openapi` from the "
        "repository root")


def test_docs_api_md_is_current() -> None:
    committed = (ROOT / "docs" / "api.md").read_bytes()
    assert committed == render_api_md(), (
        "docs/api.md is stale: run `python -m pincompute.api.openapi` from the repository root")


def test_api_md_documents_every_operation_with_its_parameters() -> None:
    doc = openapi_document()
    text = render_markdown(doc)
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert f"### `{method.upper()} {path}`" in text
            assert op.get("summary"), f"{method.upper()} {path} has no summary"
    section = text.split("### `GET /api/v1/projects/{project}/pods/{pod}/logs`")[1]
    section = section.split("\n### ")[0]
    assert "| `follow` | query | boolean | no | Keep streaming (default `false`) |" in section
    assert "| `pod` | path | string | yes |" in section
    assert "(`text/plain`)" in section
    tokens = text.split("### `POST /api/v1/tokens`")[1].split("\n### ")[0]
    assert "**Body** (`application/json`): `TokenRequest`" in tokens
    assert "`201` success" in tokens
    tags = {op["tags"][0] for ops in doc["paths"].values() for op in ops.values()}
    assert tags <= set(FAMILY_ORDER), f"place {tags - set(FAMILY_ORDER)} in FAMILY_ORDER"
    headings = [line[3:] for line in text.splitlines() if line[3:] in tags
                and line.startswith("## ")]
    assert headings == [t for t in FAMILY_ORDER if t in tags]
    for topic in ("Retry-After", "newline-delimited JSON", "Bearer", "debugging.md#exec",
                  '"kind": "Status"'):
        assert topic in text


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_no_input_makes_a_server_error(region_dir: Path, tmp_path: Path) -> None:
    """schemathesis fuzzes every operation of /openapi.json against a live gateway (bounded
    examples) and fails on any 5xx."""
    settings = ApiSettings(requests_per_second=1_000_000, mutations_per_second=1_000_000,
                           unauthenticated_per_second=1_000_000)
    async with api_env(region_dir, settings=settings) as api:
        # One worker: hypothesis parses lambdas' source with `ast`, which CPython 3.11 does
        # not do safely from two threads at once ("AST constructor recursion depth mismatch").
        proc = await asyncio.create_subprocess_exec(
            str(SCHEMATHESIS), "run", f"{api.url}/openapi.json",
            "--checks", "not_a_server_error", "--phases", "coverage,fuzzing",
            "--max-examples", "3", "--workers", "1", "--seed", "1", "--no-shrink",
            "--generation-database", "none", "--max-time", "8",
            "--request-timeout", "20", "--suppress-health-check", "all",
            "--header", f"Authorization: Bearer {api.admin_token}",
            # Revoking the caller's own token (`self`) would leave the rest unauthenticated.
            "--exclude-name", "DELETE /api/v1/tokens/{token_id}",
            "--report", "junit", "--report-dir", str(tmp_path), "--no-color",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            cwd=tmp_path, env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.api.schemathesis_hooks",
                               "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])})
        out, _ = await proc.communicate()
        text = out.decode(errors="replace")
        assert proc.returncode == 0, text[-6000:]
        assert "not_a_server_error" in text or "passed" in text.lower(), text[-2000:]
