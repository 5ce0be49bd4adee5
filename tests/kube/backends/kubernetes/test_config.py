from pathlib import Path

import pytest
import yaml

from pincompute.kube.backends.kubernetes import KubeConfigError, KubernetesClient, load_config
from pincompute.kube.backends.kubernetes.client import config_from_text

GOOD = {
    "apiVersion": "v1", "kind": "Config", "current-context": "c",
    "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:6443",
                                            "insecure-skip-tls-verify": True}}],
    "users": [{"name": "u", "user": {"token": "t"}}],
    "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
}


def test_a_good_kubeconfig(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(GOOD))
    config = load_config(path)
    assert config.cluster.server == "https://127.0.0.1:6443"
    client = KubernetesClient(config)
    assert client.info.backend == "kubernetes" and client.server.endswith(":6443")


@pytest.mark.parametrize(("content", "message"), [
    (None, "does not exist"),
    ("a: b: c", "not a valid kubeconfig"),
    (yaml.safe_dump({**GOOD, "current-context": "nope"}), "nope"),
    (yaml.safe_dump({k: v for k, v in GOOD.items() if k != "clusters"}), "not a valid"),
])
def test_bad_kubeconfigs_are_one_line(tmp_path: Path, content: str | None,
                                      message: str) -> None:
    path = tmp_path / "config"
    if content is not None:
        path.write_text(content)
    with pytest.raises(KubeConfigError) as err:
        load_config(path)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_inline_kubeconfig() -> None:
    assert config_from_text(yaml.safe_dump(GOOD)).context_name == "c"
    with pytest.raises(KubeConfigError, match="secret x"):
        config_from_text("[]", source="secret x")
