"""Preparing a cluster writes every file its components' command lines name, with
secrets private, without starting anything."""

from __future__ import annotations

import stat
from pathlib import Path

from pincompute.kubeenv import ClusterSpec, NodePool
from pincompute.kubeenv.cluster import prepare_cluster
from pincompute.kubeenv.components import ClusterPorts
from pincompute.kubeenv.pki import CertificateAuthority

#: Flags naming directories the processes make themselves.
MADE_BY_THE_PROCESS = {"--data-dir", "--cert-dir"}


def test_every_file_a_flag_names_is_written_and_secrets_are_private(tmp_path: Path) -> None:
    spec = ClusterSpec("m", zone="z", node_pools=(NodePool("p", nodes=2),))
    c = prepare_cluster(spec, cluster_dir=tmp_path / "m", bin_dir=tmp_path / "bin",
                        ports=ClusterPorts(1, 2, 3, 4), ca=CertificateAuthority.new())
    assert list(c.processes) == ["etcd", "kube-apiserver", "kube-controller-manager", "kwok"]
    assert c.server == "https://127.0.0.1:3" and c.etcd_url == "http://127.0.0.1:1"
    assert c.node_names == ("m-p-0", "m-p-1") and c.pids == {}
    named = [Path(value) for p in c.processes.values() for flag, _, value in
             (arg.partition("=") for arg in p.argv[1:])
             if value.startswith(str(tmp_path)) and flag not in MADE_BY_THE_PROCESS]
    assert named and all(path.is_file() for path in named), [p for p in named if not p.is_file()]
    private = {p.name for p in (tmp_path / "m").rglob("*")
               if p.is_file() and stat.S_IMODE(p.stat().st_mode) == 0o600}
    assert private == {"apiserver.key", "sa.key", "tokens.csv", "kubeconfig", "kcm.kubeconfig",
                       "kwok.kubeconfig"}
    assert c.processes["kwok"].env is not None and c.processes["kwok"].env["HOME"] == str(
        tmp_path / "m")


def test_a_cluster_without_nodes_runs_no_kwok(tmp_path: Path) -> None:
    c = prepare_cluster(ClusterSpec("h", role="host"), cluster_dir=tmp_path / "h",
                        bin_dir=tmp_path, ports=ClusterPorts(1, 2, 3, 4),
                        ca=CertificateAuthority.new())
    assert "kwok" not in c.processes and c.node_names == ()
