"""Every benchmark still runs (``--quick``) and ends with its JSON figures.

Speed is judged by the scripts themselves, not here: this only keeps them from
rotting, and holds the contract of their last line (the keys the issues name).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.web.browser import require_browser

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

KEYS = {
    "store": {"creates_per_s_memory", "creates_per_s_persisted", "rss_mib", "watch_p99_ms",
              "informer_list_s"},
    "scheduler": {"pods_per_s", "baseline_pods_per_s"},
    "cluster_scale": {"nodes", "pods", "pods_all_ready_s", "rss_mib", "mutating_ops_per_min"},
    "kube_informer": {"informer_list_s", "baseline_typed_list_s", "watch_events_per_s"},
    "federation": {"decisions_per_s", "baseline_decisions_per_s"},
    "admission": {"drain_s", "workloads", "positions_correct", "baseline_drain_s"},
    "workloads": {"app_ready_s", "app_rollout_s", "job_complete_s", "baseline_app_ready_s",
                  "baseline_app_rollout_s", "baseline_job_complete_s", "app_ready_ratio",
                  "app_rollout_ratio", "job_complete_ratio", "job_completions_per_s",
                  "peak_rss_mib"},
    "launch": {"p50_s", "p99_s", "launches", "background_workloads", "baseline_p99_s"},
    "console": {"workloads", "first_render_ms", "baseline_list_ms", "baseline_tool",
                "update_p50_ms", "baseline_update_p50_ms", "burst_ms", "baseline_burst_ms",
                "max_frame_gap_ms", "max_frame_gap_idle_ms", "max_long_task_ms"},
    "api_cache": {"cached_rps", "direct_rps", "ratio"},
    "api_load": {"read_ratio", "write_ratio", "read_p99_ms", "peer_read_p99_ms"},
    "response_size": {"kinds", "mean_saving_pct", "max_saving_pct"},
    "scaler": {"cycle_s", "baseline_cycle_s", "react_s", "scalers", "nodes"},
    "ops": {"nodes", "pods", "apps", "rotation_s", "baseline_rotation_s", "max_unavailable",
            "max_unavailable_over_budget", "remediation_reaction_s"},
}
NEEDS_KUBE = {"kube_informer", "api_load", "response_size"}


@pytest.mark.parametrize("name", sorted(KEYS))
def test_benchmark_runs_and_reports(name: str, request: pytest.FixtureRequest) -> None:
    if name in NEEDS_KUBE:
        request.getfixturevalue("kube_bin")  # real binaries, or the tier's skip/fail rule
    if name == "console":
        require_browser()  # Debian's Chromium, or the tier's skip/fail rule
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), "--quick"],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert KEYS[name] <= figures.keys()
    if name == "admission":
        assert figures["positions_correct"] is True
    if name == "ops":
        assert figures["max_unavailable_over_budget"] <= 0  # no app ever below its budget


# The comparisons with the real peers, where their --quick run takes under a minute.  Their
# binaries are optional builds (tools/build-kube.sh PEER; the scheduler_perf test binary
# takes ~15 min on two cores), which `make test` never runs: without them these skip,
# naming the command that builds them.
PEER_CASES = {
    "store": (("etcdload",), ["--peer"], {"peer_puts_per_s", "ratio_persisted"}),
    "scheduler": (("scheduler-perf",), ["--peer", "--no-persisted"],
                  {"peer_pods_per_s", "ratio", "pods_per_s", "baseline_pods_per_s"}),
}


@pytest.mark.parametrize("name", sorted(PEER_CASES))
def test_peer_comparison_runs_and_reports(name: str) -> None:
    peers, flags, keys = PEER_CASES[name]
    check = subprocess.run(["bash", str(ROOT / "tools" / "build-kube.sh"), "--check", *peers],
                           capture_output=True, text=True, timeout=60)
    if check.returncode != 0:
        pytest.skip(f"peer not built: run tools/build-kube.sh {' '.join(peers)}")
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), "--quick",
                             *flags], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert keys <= figures.keys()
    assert figures[next(iter(k for k in keys if k.startswith("peer_")))] > 0
