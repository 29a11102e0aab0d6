"""The seed-ensemble manifest ``<run_dir>/ensemble.json``: which model directories are members,
with their checkpoints' signatures (written by the train stage, read by evaluation and serving)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from graphrec.nn.ensemble import GraphRecEnsemble
from graphrec.paths import ModelPaths
from graphrec.signatures import file_signature
from graphrec.training.checkpoint import load_checkpoint


def write_ensemble_manifest(path: str | Path, member_dirs: Sequence[str | Path]) -> Path:
    """Record the members (model directories, relative to the manifest's folder) and their checkpoints' signatures."""
    path = Path(path)
    run = path.parent
    members = []
    for d in member_dirs:
        ckpt = ModelPaths(Path(d)).checkpoint
        members.append({"dir": str(Path(d).resolve().relative_to(run.resolve())), "checkpoint": file_signature(ckpt)})
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"members": members, "score": "mean of member cosine scores"}, indent=1) + "\n")
    tmp.replace(path)
    return path


def load_ensemble(path: str | Path) -> tuple[GraphRecEnsemble | None, str]:
    """The ensemble of manifest ``path``, or ``(None, why not)`` when there is none or a member changed since."""
    path = Path(path)
    if not path.exists():
        return None, f"no {path.name} (written by `graphrec train` with suite.ensemble and 2+ seeds)"
    try:
        members = [{"dir": str(m["dir"]), "checkpoint": m["checkpoint"]} for m in json.loads(path.read_text())["members"]]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as exc:
        return None, f"{path} is not a readable ensemble manifest ({type(exc).__name__}); re-run `graphrec train`"
    for m in members:
        ckpt = ModelPaths(path.parent / m["dir"]).checkpoint
        if not ckpt.exists() or file_signature(ckpt) != m["checkpoint"]:
            return None, f"{ckpt} is missing or changed since {path} was written (re-run `graphrec train`)"
    return GraphRecEnsemble([load_checkpoint(ModelPaths(path.parent / m["dir"]).checkpoint) for m in members]), "ok"
