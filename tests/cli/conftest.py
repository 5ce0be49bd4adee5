"""The CLI's in-process tests: the real command (Typer's runner, in a thread) against a
real gateway in front of a sim region (:mod:`tests.gateway_fixture`).

One region per test module (its event loop too): between two modules the package's
slow synchronous tests run, during which a region on an idle loop would miss its
lease renewals."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest_asyncio
from typer.testing import CliRunner

from pincompute.cli.main import app
from tests.api.conftest import ApiEnv
from tests.gateway_fixture import shared_gateway


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


@dataclass
class Cli:
    """``await cli("get", "apps")``: the command as the platform admin, project ``demo``."""

    env: ApiEnv

    async def __call__(self, *args: str, token: str | None = None, code: int = 0,
                       stdin: str | None = None) -> Result:
        argv = ["--server", self.env.url, "--token", token or self.env.admin_token, *args]
        result = await asyncio.to_thread(
            CliRunner().invoke, app, argv, input=stdin,
            env={"PINCOMPUTE_PROJECT": "demo", "PINCOMPUTE_CONFIG": "/nonexistent",
                 "COLUMNS": "160"}, catch_exceptions=False)
        out = Result(result.exit_code, result.stdout, result.stderr)
        assert out.code == code, f"pincompute {' '.join(args)} -> {out}"
        return out


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cli_gateway() -> AsyncIterator[ApiEnv]:
    async with shared_gateway("pincompute-cli-") as env:
        yield env


@pytest_asyncio.fixture(loop_scope="module")
async def cli(cli_gateway: ApiEnv) -> Cli:
    return Cli(cli_gateway)
