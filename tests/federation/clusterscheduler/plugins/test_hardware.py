from __future__ import annotations

from tests.federation.clusterscheduler.support import app, excluded, member, scheduler


def test_every_named_hardware_must_be_offered() -> None:
    a100 = {"name": "nvidia-a100", "type": "gpu", "count": 8}
    nvme = {"name": "local-nvme", "type": "storage"}
    s = scheduler(member("gpu", "z1", gpu=8, hardware=[a100, nvme]),
                  member("gpu-no-nvme", "z1", gpu=8, hardware=[a100]),
                  member("cpu", "z1"))
    d = s.schedule(app(2, gpu=1, placement={"hardware": ["nvidia-a100", "local-nvme"]}),
                   reserve=False)
    assert d.replicas() == {"gpu": 2}
    why = excluded(d)
    assert why["gpu-no-nvme"] == ("Hardware", "lacks hardware local-nvme")
    assert why["cpu"] == ("Hardware", "lacks hardware nvidia-a100, local-nvme")


def test_gpu_requests_need_reported_gpus() -> None:
    s = scheduler(member("gpu", "z1", gpu=4), member("cpu", "z1"))
    d = s.schedule(app(4, gpu=1), reserve=False)
    assert d.replicas() == {"gpu": 4}
    plugin, why = excluded(d)["cpu"]
    assert plugin == "ResourcesFit" and "insufficient gpu" in why
