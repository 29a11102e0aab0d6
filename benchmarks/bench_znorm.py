"""Prototype (issue 13, RESULTS "What was tried"): per-user spread normalisation of GraphRec's calibrated cold terms (cold validation only).

Trains (or reuses) GraphRec with defaults on the default split, then for alpha in a grid scales each
cold term k of user u by (mean_k / sigma_uk)^alpha, sigma_uk = std of term k over warm items for user u
(train-side only: the user vector does not depend on the cold catalogue). alpha 0 = the model as calibrated.
Only the chosen alpha (best on cold validation) is evaluated on test, next to alpha 0.

    python3 benchmarks/bench_znorm.py [THREADS] [MODEL_DIR]     # -> benchmarks/results/znorm.json
"""
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from graphrec.config import load_config
from graphrec.data import load_prepared, load_recdata
from graphrec.encoders import encode_items
from graphrec.evaluation.protocol import make_validator, evaluate
from graphrec.stages.train import _train_graphrec_dir
from graphrec.training.checkpoint import load_checkpoint
from graphrec.recipes.calibrate import TermScores

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
root = ROOT / "runs" / "ml1m-mm"
out = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("/tmp/graphrec_znorm")
cfg = load_config(str(ROOT / "configs" / "ml1m-mm.yaml"), ["train.tensorboard=false"])
_, items = load_prepared(root / "prepared")
feats = encode_items(items, cfg.encoders, root / "features", progress=False)[0]
data = load_recdata(root / "prepared", root / "split", feats)
val = make_validator(data, ks=(20,), batch_size=cfg.eval.batch_size)
if not (out / "checkpoint.pt").exists() or not (out / "calibration.json").exists():
    t = time.perf_counter()
    _train_graphrec_dir("proto", out, data, cfg.model.restricted_to(data.features), cfg.train.replace(seed=cfg.suite.seeds[0]),
                        {"proto": 1}, val, True, print, False)
    print(f"trained in {time.perf_counter() - t:.0f} s", flush=True)
model = load_checkpoint(out / "checkpoint.pt").eval()


class Scaled(TermScores):
    def __init__(self, model, alpha):
        super().__init__(model)
        self.alpha = alpha
        w = self.w
        U = model.num_users
        users = torch.arange(U)
        def spread(f):
            return torch.cat([f(users[s:s + 1024])[:, w].std(1) for s in range(0, U, 1024)]).clamp_min(1e-6)
        with torch.no_grad():
            self.sd = {"cos": torch.cat([(self.u[users[s:s + 1024]] @ self.i[w].T).std(1) for s in range(0, U, 1024)]).clamp_min(1e-6),
                       "profile": spread(model.content_scores.profile_scores)}
            if self.transfer is not None:
                self.sd["transfer"] = spread(model.backbone.transfer_scores)
            if self.walk is not None:
                self.sd["walk"] = spread(self.walk.scores)
        self.f = {k: (v.mean() / v) ** alpha for k, v in self.sd.items()}

    @torch.no_grad()
    def score(self, users):
        cs, bb, c, w = self.content_scores, self.backbone, self.c, self.w
        f = {k: v[users].unsqueeze(1) for k, v in self.f.items()}
        s = self.u[users] @ self.i.T
        cold = f["cos"] * s[:, c] + cs.profile_weight * f["profile"] * self.profile[users] + (cs.prior_weight * cs.prior[c] + cs.cold_offset).unsqueeze(0)
        if self.transfer is not None:
            cold = cold + bb.transfer_weight * f["transfer"] * self.transfer[users]
        if self.walk is not None:
            cold = cold + self.walk.weight * f["walk"] * self.walk_scores[users]
        s[:, c] = cold
        sw = self.warm_users[users] @ self.i[w].T
        if bb.ready:
            sw = bb.warm_gnn_weight * sw + bb.user[users] @ bb.item[w].T
        s[:, w] = sw
        return s


res = {"weights": {"profile": float(model.content_scores.profile_weight), "prior": float(model.content_scores.prior_weight),
                   "walk": float(model.walk.weight) if model.walk is not None else None}, "alpha": {}}
for a in [0.0, 0.25, 0.5, 0.75, 1.0]:
    sc = Scaled(model, a)
    r = val(sc, ["cold"])
    res["alpha"][a] = r
    print(a, {k: round(v, 4) for k, v in r.items()}, flush=True)
    if a == 0.0:
        res["spread_cv"] = {k: float(v.std() / v.mean()) for k, v in sc.sd.items()}
        print("spread cv over users", res["spread_cv"], flush=True)
best = max(res["alpha"], key=lambda a: res["alpha"][a]["cold/ndcg@20"])
res["best_alpha"] = best
if best != 0.0:
    m = evaluate(Scaled(model, best), data, "test", ("cold",), (20,), 1024)
    m0 = evaluate(Scaled(model, 0.0), data, "test", ("cold",), (20,), 1024)
    res["test"] = {"best": {k: float(v) for k, v in m["cold"].items() if "@" in k}, "alpha0": {k: float(v) for k, v in m0["cold"].items() if "@" in k}}
    print("test", res["test"], flush=True)
(ROOT / "benchmarks" / "results" / "znorm.json").write_text(json.dumps(res, indent=1, default=str))
