"""The command's surface: every verb of DESIGN §10 exists and is in docs/cli.md."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from pincompute.cli.main import app

DOC = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
DESIGN_VERBS = {
    "up", "down", "apply", "get", "describe", "delete", "logs", "exec", "events", "scale",
    "pause", "resume", "stop", "start", "restart", "restart-container", "rollout status",
    "project create", "cluster list", "cluster add", "cluster remove", "node cordon",
    "node uncordon", "node drain", "token create", "token list", "token revoke",
}


def _commands() -> set[str]:
    def walk(cmd: object, path: list[str]) -> set[str]:
        if isinstance(cmd, TyperGroup):
            out: set[str] = set()
            for name, sub in cmd.commands.items():
                out |= walk(sub, [*path, name])
            return out
        return {" ".join(path)}

    return walk(typer.main.get_command(app), [])


def test_every_verb_exists_and_is_documented() -> None:
    commands = _commands()
    assert DESIGN_VERBS <= commands
    missing = sorted(c for c in commands
                     if f"pincompute {c}" not in DOC and f"`{c}" not in DOC)
    assert not missing, f"not in docs/cli.md: {missing}"


def test_help_lists_the_exit_codes() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "3 the object" in result.stdout and "7 the server could not be reached" in \
        result.stdout
