"""Every path of a run, named in one place (nanoGPT's ``out_dir``, torchtune's checkpoint dir).

:class:`RunPaths` is the layout of one run directory; each stage writes only under its own
entry (prepare -> ``prepared/``, split -> ``split/``, encode -> ``features/``, train -> the
model directories and ``baselines/``, evaluate -> ``evaluation/``). :class:`ModelPaths` names
the files inside one trained model's directory, :class:`EvaluationPaths` those the evaluate stage
writes (and the benchmark and ``graphrec.evaluation.recompute`` read), :class:`ServePaths` the
items added at serving time. A benchmark run (``benchmark/run<r>/``) is a
:class:`RunPaths` of its own that shares the parent run's prepared tables and feature store.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: The stamp a finished stage writes into each output directory (:mod:`graphrec.stages.base`).
STAGE_STAMP = "stage.json"


@dataclass(frozen=True)
class ModelPaths:
    """Files of one trained model directory (GraphRec seed, oracle, or a baseline)."""

    root: Path

    @property
    def checkpoint(self) -> Path:
        """Best-on-validation checkpoint (what evaluation and serving read)."""
        return self.root / "checkpoint.pt"

    @property
    def last(self) -> Path:
        """Latest training state (for resuming an interrupted training)."""
        return self.root / "last.pt"

    @property
    def history(self) -> Path:
        return self.root / "history.json"

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def notes(self) -> Path:
        return self.root / "notes.txt"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tb"

    @property
    def refine(self) -> Path:
        return self.root / "warm_refine.json"

    @property
    def calibration(self) -> Path:
        return self.root / "calibration.json"

    @property
    def loss_weights_plot(self) -> Path:
        return self.root / "loss_weights.png"

    @property
    def scorer(self) -> Path:
        """Baselines: the trained scorer (:mod:`graphrec.baselines.store`)."""
        return self.root / "scorer.pt"

    @property
    def tuning(self) -> Path:
        """Baselines: the validation trials that chose this model's parameters."""
        return self.root / "tuning.json"

    @property
    def stamp(self) -> Path:
        return self.root / STAGE_STAMP


def topk_name(model: str, setting: str) -> str:
    """File name of one model's top-K lists in one setting (``<model>_<setting>.csv``)."""
    return f"{model}_{setting}.csv"


@dataclass(frozen=True)
class EvaluationPaths:
    """Files of the evaluation directory (written only by the evaluate stage)."""

    root: Path

    @property
    def metrics(self) -> Path:
        """``{model: {setting: {metric: value}}}``."""
        return self.root / "metrics.json"

    @property
    def metrics_ci(self) -> Path:
        return self.root / "metrics_ci.json"

    @property
    def metrics_seeds(self) -> Path:
        """Mean / std / CI of the GraphRec metrics over training seeds."""
        return self.root / "metrics_seeds.json"

    @property
    def missing_modality(self) -> Path:
        return self.root / "missing_modality.json"

    @property
    def report(self) -> Path:
        return self.root / "report.md"

    @property
    def fairness(self) -> Path:
        return self.root / "fairness.json"

    @property
    def topk_dir(self) -> Path:
        return self.root / "topk"

    def topk(self, model: str, setting: str) -> Path:
        """Top-K lists of ``model`` in ``setting`` (``user_id,item_id,rank``)."""
        return self.topk_dir / topk_name(model, setting)


@dataclass(frozen=True)
class ServePaths:
    """Items added at serving time (``graphrec add-items``, ``POST /items``), kept across restarts."""

    root: Path

    @property
    def embeddings(self) -> Path:
        """The added items' embeddings, with the model space they were computed in."""
        return self.root / "added_embeddings.pt"

    @property
    def items(self) -> Path:
        """The added items' prepared rows."""
        return self.root / "added_items.csv"

    @property
    def log(self) -> Path:
        return self.root / "added_log.json"

    @property
    def uploads(self) -> Path:
        """Images uploaded through the service."""
        return self.root / "uploads"


@dataclass(frozen=True)
class RunPaths:
    """Where each stage writes inside ``root``.

    Args:
        root: the run directory.
        shared: where the prepared tables and the feature store live when they are shared
            with another run (a benchmark run uses its parent's); default ``root``.
    """

    root: Path
    shared: Path | None = None

    @property
    def config(self) -> Path:
        """The run's whole config (what serving reloads)."""
        return self.root / "config.yaml"

    @property
    def prepared(self) -> Path:
        return (self.shared or self.root) / "prepared"

    @property
    def features(self) -> Path:
        return (self.shared or self.root) / "features"

    @property
    def split(self) -> Path:
        return self.root / "split"

    @property
    def model(self) -> Path:
        """The main GraphRec model (first training seed)."""
        return self.root / "model"

    def model_dir(self, seed: int, first_seed: int) -> Path:
        """GraphRec model of one training seed: ``model/`` for the first seed, else ``model_seed<N>/``."""
        return self.model if seed == first_seed else self.root / f"model_seed{seed}"

    @property
    def oracle(self) -> Path:
        return self.root / "model_oracle"

    @property
    def shared_fits(self) -> Path:
        """Fits shared between the run's models (graphrec.baselines.shared_fit; safe to delete)."""
        return self.root / "shared_fits"

    @property
    def baselines(self) -> Path:
        return self.root / "baselines"

    def baseline(self, name: str) -> Path:
        return self.baselines / name

    @property
    def ensemble_manifest(self) -> Path:
        return self.root / "ensemble.json"

    @property
    def evaluation(self) -> Path:
        return self.root / "evaluation"

    @property
    def evaluation_files(self) -> EvaluationPaths:
        return EvaluationPaths(self.evaluation)

    @property
    def serve(self) -> Path:
        """Items added at serving time (``add-items``, the service)."""
        return self.root / "serve"

    @property
    def serve_files(self) -> ServePaths:
        return ServePaths(self.serve)

    @property
    def ablation(self) -> Path:
        """Default output directory of ``graphrec ablation``."""
        return self.root / "ablation"

    @property
    def benchmark(self) -> Path:
        return self.root / "benchmark"

    @property
    def benchmark_summary(self) -> Path:
        return self.benchmark / "summary.json"

    @property
    def benchmark_report(self) -> Path:
        return self.benchmark / "report.md"

    @property
    def benchmark_plot(self) -> Path:
        """Per-run metrics of the benchmark (linked from its report)."""
        return self.benchmark / "per_run.png"

    def benchmark_log(self, run: int) -> Path:
        """Output of the worker process of benchmark run ``run``."""
        return self.benchmark / f"run{run}.log"

    @property
    def run_record(self) -> Path:
        """A benchmark run's own record (``run.json``: run number, seconds of the last call)."""
        return self.root / "run.json"

    def benchmark_run(self, run: int) -> "RunPaths":
        """Run ``run`` of the item k-fold benchmark: own split, models and evaluation."""
        return RunPaths(self.benchmark / f"run{run}", shared=self.shared or self.root)
