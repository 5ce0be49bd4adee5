"""The kinds' reference pages: in sync with docs/reference, and saying what the models say."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pincompute.cli.main import app
from pincompute.model import reference
from pincompute.model.kinds import KIND_TABLE

DOCS_DIR = Path(__file__).resolve().parents[2] / "docs" / "reference"
PAGES = dict(reference.rendered())
KINDS = {info.kind: info for info in KIND_TABLE}


def test_committed_reference_is_up_to_date() -> None:
    stale = reference.stale_files(DOCS_DIR)
    assert not stale, (f"reference pages out of date in docs/reference: {', '.join(stale)}. "
                       f"Regenerate them with `{reference.REGENERATE}` and commit the result.")
    present = {p.name for p in DOCS_DIR.glob("*.md")}
    assert present == set(PAGES), f"unexpected files in docs/reference: {present - set(PAGES)}"


def test_check_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert reference.main(["--check", "--dir", str(tmp_path)]) == 1
    assert reference.REGENERATE in capsys.readouterr().err
    assert reference.main(["--dir", str(tmp_path)]) == 0
    assert reference.main(["--check", "--dir", str(tmp_path)]) == 0
    (tmp_path / "pinapp.md").write_text("# edited\n")
    assert reference.main(["--check", "--dir", str(tmp_path)]) == 1
    assert reference.write(tmp_path) == ["pinapp.md"]


def test_the_cli_writes_and_checks_the_pages(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "ref"
    assert runner.invoke(app, ["crds", "--docs", str(out), "--check"]).exit_code == 1
    written = runner.invoke(app, ["crds", "--docs", str(out)])
    assert written.exit_code == 0, written.output
    assert sorted(p.name for p in out.iterdir()) == sorted(PAGES)
    assert runner.invoke(app, ["crds", "--docs", str(out), "--check"]).exit_code == 0


def test_the_index_links_every_kind_with_its_short_names() -> None:
    index = PAGES[reference.INDEX]
    for info in KIND_TABLE:
        row = next(line for line in index.splitlines()
                   if line.startswith(f"| [{info.kind}]({reference.page_name(info)})"))
        assert all(f"`{s}`" in row for s in info.short_names)
        assert ("namespaced" if info.namespaced else "cluster") in row


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_page_lists_every_field_and_column_of_its_kind(kind: str) -> None:
    info = KINDS[kind]
    page = PAGES[reference.page_name(info)]
    assert page.startswith("<!-- Generated") and f"\n# {kind}\n" in page
    for model, heading in ((info.spec, "## spec"), (info.status, "## status")):
        section = page.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]
        for name, field in model.model_fields.items():
            alias = field.alias or name
            assert f"| `{alias}` |" in section, f"{kind} {heading}: {alias} missing"
    for column in info.printer_columns:
        assert f"`{column.json_path}`" in page
    for f in info.immutable:
        assert f"`spec.{f}`" in page
    # Every linked type has its section on the page.
    for target in set(re.findall(r"\]\(#([a-z0-9]+)\)", page)):
        assert any(h.lower() == target for h in re.findall(r"^### (\w+)$", page, re.M)), target


def test_types_defaults_and_limits_come_from_the_schema() -> None:
    page = PAGES["pinapp.md"]
    rows: dict[str, str] = {}
    for m in re.finditer(r"^\| `(\w+)` \|.*$", page, re.M):
        rows.setdefault(m.group(1), m.group(0))  # the first: spec before status and types
    assert rows["replicas"] == ("| `replicas` | integer | `1` | How many pods, in total over "
                                "all clusters. | ≥ 0 |")
    assert "| [PodTemplate](#podtemplate) | required |" in rows["template"]
    assert "≥ 1" in rows["progressDeadlineSeconds"]
    assert "one of `reserved`, `ondemand`, `preemptible`" in rows["tier"]
    assert "| integer or percentage | `25%` |" in rows["maxSurge"]
    assert "| its fields' defaults |" in rows["zoneRollout"]
    assert "| Scale subresource | replicas `.spec.replicas`" in page
    pod = PAGES["pinpod.md"]
    assert "| `requests` | map of string to quantity |" in pod
    cron = PAGES["pincronjob.md"]
    assert "at most 52 characters" in cron
