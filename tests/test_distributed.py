"""Data-parallel training on two local CPU processes (Gloo): the generic loop with a toy task, and
GraphRec launched through torchrun exactly as ``graphrec train --nproc 2`` does.

What is checked: the shards of a batch cover it exactly; the all-reduced gradient is the full-batch
gradient (plain SGD, so a wrong scale would show); a parameter no rank used keeps ``grad = None``;
validation runs on rank 0 and every rank stops at the same epoch; after GraphRec training both
ranks hold identical parameters, rank 0 alone wrote the run files, and the result matches a
single-process run (to float rounding with a deterministic objective, within seed noise with the
default stochastic one: dropout draws come from each rank's own RNG).
"""

import json
import time

import pytest
import torch
from synthetic import make_synthetic

from graphrec.training.distributed import DistContext

MP_TIMEOUT_S = 120


def test_shards_cover_each_batch_once():
    for n in (1, 2, 7, 8, 255):
        for world in (2, 3):
            rows, weights = [], []
            for r in range(world):
                ctx = DistContext(rank=r, world_size=world)
                sl = ctx.shard(n)
                got = list(range(n))[sl]
                weights.append(ctx._weight)
                if ctx._weight > 0:
                    rows += got
                else:  # an empty shard computes on row 0 with weight 0
                    assert got == [0]
            assert rows == list(range(n)), (n, world)
            assert sum(weights) == pytest.approx(1.0)
    single = DistContext()
    assert single.shard(5) == slice(None) and single._weight == 1.0
    assert not single.enabled and single.is_main
    assert single.mean_of({"a": 2.0}) == {"a": 2.0}
    assert single.broadcast_object([1]) == [1]
    f = lambda: 3  # noqa: E731
    assert single.main_only(f) is f


def test_init_from_env_without_torchrun_is_one_process(monkeypatch):
    from graphrec.training.distributed import ENV_KEYS, init_from_env

    for k in ENV_KEYS:
        monkeypatch.delenv(k, raising=False)
    ctx = init_from_env("cpu")
    assert (ctx.rank, ctx.world_size, ctx.backend, ctx.device) == (0, 1, None, torch.device("cpu"))


# --------------------------------------------------------------------------- the loop, two processes
X = torch.randn(23, 4, generator=torch.Generator().manual_seed(0))
Y = X @ torch.tensor([1.0, -2.0, 0.5, 3.0])
VALS_RANK0 = [1.0, 2.0, 1.5, 1.4, 9.0, 9.0]  # best at epoch 1; patience 1 -> stops after epoch 2


class Toy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(4))
        self.unused = torch.nn.Parameter(torch.zeros(2))

    def forward(self, x, y):
        return ((x @ self.w - y) ** 2).mean()


def _toy_batches(dist):
    gen = torch.Generator().manual_seed(1)

    def batches(epoch):
        perm = torch.randperm(len(X), generator=gen)
        for b in range(0, len(X), 7):  # 7-row batches, the last one 2 rows: unequal shards
            idx = perm[b:b + 7]
            if dist is not None:
                idx = idx[dist.shard(idx.numel())]
            yield X[idx], Y[idx]

    return batches


def _toy_fit(dist):
    from graphrec.training.loop import EarlyStopping, fit

    task = Toy()
    opt = torch.optim.SGD(task.parameters(), lr=0.05)
    rank = 0 if dist is None else dist.rank
    calls = []

    def validate():
        calls.append(1)
        vals = VALS_RANK0 if rank == 0 else [float(100 + len(calls))] * 10  # other ranks' values would never stop
        return {"val/m": vals[len(calls) - 1]}

    state = fit(task, _toy_batches(dist), opt, epochs=6, validate=dist.main_only(validate) if dist else validate,
                early_stopping=EarlyStopping("val/m", patience=1), dist=dist)
    return task, state, len(calls)


def _toy_worker(rank, world, store, out):
    import torch.distributed as tdist

    torch.set_num_threads(1)
    tdist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        dist = DistContext(rank=rank, world_size=world, backend="gloo")
        task, state, calls = _toy_fit(dist)
        torch.save({"w": task.w.detach().clone(), "unused_grad": task.unused.grad, "epochs": state.epoch,
                    "losses": [h["loss"] for h in state.history], "validate_calls": calls}, f"{out}/rank{rank}.pt")
    finally:
        tdist.destroy_process_group()


def _spawn(fn, world, *args):
    import torch.multiprocessing as mp

    ctx = mp.start_processes(fn, args=(world, *args), nprocs=world, join=False, start_method="spawn")
    deadline = time.monotonic() + MP_TIMEOUT_S
    try:
        while not ctx.join(timeout=1):
            if time.monotonic() > deadline:
                raise TimeoutError(f"distributed test workers did not finish within {MP_TIMEOUT_S}s")
    finally:
        for p in ctx.processes:  # only the workers this test started
            if p.is_alive():
                p.terminate()


def test_loop_all_reduces_gradients_and_stops_together(tmp_path):
    _spawn(_toy_worker, 2, str(tmp_path / "store"), str(tmp_path))
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    single, s_state, _ = _toy_fit(None)
    assert torch.equal(r0["w"], r1["w"]), "ranks diverged"
    # the all-reduced gradient of the shards is the full-batch gradient (SGD: any scale error would show)
    torch.testing.assert_close(r0["w"], single.w.detach(), rtol=0, atol=1e-6)
    assert r0["unused_grad"] is None and r1["unused_grad"] is None  # no rank used it: no gradient, as in one process
    assert r0["epochs"] == r1["epochs"] == s_state.epoch == 3  # early stopping decided on rank 0's values
    assert r0["validate_calls"] == 3 and r1["validate_calls"] == 0  # validation ran on rank 0 only
    assert r0["losses"] == r1["losses"]  # epoch means averaged over the ranks: the same record everywhere


# --------------------------------------------------------------------------- GraphRec through torchrun
@pytest.fixture(scope="module")
def data():
    return make_synthetic(num_users=120, num_items=80, per_user=12, seed=3)


def _configs(deterministic: bool):
    from graphrec.nn import ModelConfig
    from graphrec.training import TrainConfig

    if deterministic:  # no dropout of any kind, only row-mean loss terms: DDP = one process up to float order
        mc = ModelConfig(dim=16, proj_hidden=32, num_layers=2, knn_k=3, dropout=0.0, id_dropout=0.0)
        tc = TrainConfig(epochs=2, batch_size=255, num_negatives=16, loss_weights={"rec": 1.0, "cold_rec": 1.0},
                         tensorboard=True, warm_refine_epochs=0)
    else:  # the default objective (every auxiliary term, ID dropout, projector dropout)
        mc = ModelConfig(dim=16, proj_hidden=32, num_layers=2, knn_k=3)
        tc = TrainConfig(epochs=3, batch_size=256, num_negatives=16, tensorboard=False, patience=10, warm_refine_epochs=0)
    return mc, tc


def _single(data, mc, tc, out):
    from graphrec.evaluation.protocol import make_validator
    from graphrec.recipes.graphrec import train_graphrec

    _, history = train_graphrec(data, mc, tc, out, make_validator(data), progress=False)
    return history


def _launch(data, mc, tc, out, ranks):
    from graphrec.stages.ddp import launch_train_graphrec

    return launch_train_graphrec(data, mc, tc, out, 2, device="cpu", progress=False, timeout_s=240, rank_state_dir=ranks)


def test_graphrec_two_processes_equal_one_process(data, tmp_path):
    mc, tc = _configs(deterministic=True)
    h1 = _single(data, mc, tc, tmp_path / "single")
    h2 = _launch(data, mc, tc, tmp_path / "ddp", tmp_path / "ranks")
    r0, r1 = (torch.load(tmp_path / "ranks" / f"rank{r}.pt") for r in (0, 1))
    assert r0["params"].keys() == r1["params"].keys()
    assert all(torch.equal(r0["params"][k], r1["params"][k]) for k in r0["params"]), "ranks hold different parameters"
    last = torch.load(tmp_path / "single" / "last.pt", weights_only=False)["task"]
    gap = max(float((r0["params"][k] - last[k]).abs().max()) for k in r0["params"])
    assert gap < 1e-4, f"2-process training drifted from the 1-process one by {gap}"
    assert len(h2) == len(h1) == 2
    for a, b in zip(h1, h2):
        assert b["val/cold/ndcg@20"] == pytest.approx(a["val/cold/ndcg@20"], abs=1e-3)
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-3)
    info = json.loads((tmp_path / "ddp" / "ddp.json").read_text())
    assert (info["world_size"], info["backend"], info["max_parameter_gap"], info["epochs_run"]) == (2, "gloo", 0.0, 2)
    # rank 0 alone wrote: one TensorBoard event file, the usual run files, no spec left behind
    assert len(list((tmp_path / "ddp" / "tb").glob("events.out.tfevents.*"))) == 1
    names = {p.name for p in (tmp_path / "ddp").iterdir()}
    assert {"checkpoint.pt", "last.pt", "history.json", "config.yaml", "ddp.json"} <= names
    assert "ddp_spec.pt" not in names


def test_graphrec_default_objective_two_processes(data, tmp_path):
    from graphrec.training import load_checkpoint

    mc, tc = _configs(deterministic=False)
    h1 = _single(data, mc, tc, tmp_path / "single")
    h2 = _launch(data, mc, tc, tmp_path / "ddp", tmp_path / "ranks")
    r0, r1 = (torch.load(tmp_path / "ranks" / f"rank{r}.pt") for r in (0, 1))
    assert all(torch.equal(r0["params"][k], r1["params"][k]) for k in r0["params"]), "ranks hold different parameters"
    assert r0["epoch"] == r1["epoch"] == len(h2) == len(h1)
    key = "val/cold/ndcg@20"
    best1, best2 = max(h[key] for h in h1), max(h[key] for h in h2)
    # same seed, same batches; only the dropout draws and float order differ: within seed noise
    assert abs(best2 - best1) < 0.05, (best1, best2)
    assert h2[-1]["loss"] == pytest.approx(h1[-1]["loss"], rel=0.05)
    model = load_checkpoint(tmp_path / "ddp" / "checkpoint.pt")  # rank 0's best checkpoint is a normal one
    assert model.num_items == data.num_items
