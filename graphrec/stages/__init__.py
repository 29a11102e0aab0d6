"""Pipeline stages (the orchestration layer): each reads files, writes files under its own part
of the run directory (:class:`graphrec.paths.RunPaths`), and skips work that is up to date.

prepare -> split -> encode -> train (every model: GraphRec seeds, oracle, baselines) -> evaluate
(reads the checkpoints, writes ``evaluation/``). Stamps: :mod:`graphrec.stages.base`.
"""

from graphrec.signatures import file_signature, fingerprint
from graphrec.stages.base import outputs_verified, run_stage
from graphrec.stages.data import load_data, stage_encode, stage_prepare, stage_split
from graphrec.stages.evaluate import load_models, stage_evaluate
from graphrec.stages.train import stage_train

__all__ = ["file_signature", "fingerprint", "load_data", "load_models", "outputs_verified", "run_stage",
           "stage_encode", "stage_evaluate", "stage_prepare", "stage_split", "stage_train"]
