"""Helpers of the real-cluster tier: running the ``pincompute`` and ``kubectl`` commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pincompute.kube import NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NAMESPACES, Resource
from tests.waiting import eventually

SERVICEACCOUNTS = Resource("", "v1", "serviceaccounts", "ServiceAccount",
                           status_subresource=False)


def pincompute(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The command as a user runs it (a fresh process), with its output captured."""
    return subprocess.run([sys.executable, "-m", "pincompute.cli.main", *args],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200"})


def kubectl(bin_dir: Path, kubeconfig: Path | str, *args: str,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(bin_dir / "kubectl"), "--kubeconfig", str(kubeconfig), *args],
                          capture_output=True, text=True, timeout=60, input=input)


def start_controller(log: Path, *args: str) -> subprocess.Popen[str]:
    """A controller process; its log goes to a file (a pipe nobody reads would block it)."""
    return subprocess.Popen([sys.executable, "-m", "pincompute.cli.main", "controller", *args],
                            stdout=log.open("a"), stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def stop(proc: subprocess.Popen[str], *, timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(2)  # SIGINT, as Ctrl-C
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(f"controller {proc.pid} did not stop on SIGINT within {timeout} s")
    return proc.returncode


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The error output must be one clear line, never a traceback."""
    assert result.returncode != 0
    text = (result.stderr + result.stdout).strip()
    assert "Traceback" not in text, text
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


async def create_namespace(client: KubeClient, namespace: str) -> None:
    """Create ``namespace`` and wait for its default service account: a real API server
    refuses pods in a namespace until the service-account controller has made it."""
    await client.create(NAMESPACES, {"metadata": {"name": namespace}})

    async def default_account() -> bool:
        try:
            await client.get(SERVICEACCOUNTS, "default", namespace=namespace)
            return True
        except NotFound:
            return False

    await eventually(default_account, timeout=30, what="the default service account")
