"""The whole pipeline's configuration: one YAML file, one section per stage.

Precedence: command-line ``--set section.key=value`` overrides > the YAML file > the defaults
declared here and in each section's dataclass. Unknown keys are errors that name the key.
``graphrec config --reference`` prints every option (docs/CONFIG.md is generated from it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from graphrec.config_base import ConfigError, StrictConfig, opt
from graphrec.baselines.config import BaselinesConfig
from graphrec.benchmark.config import BenchmarkConfig
from graphrec.data.config import DataConfig, SplitConfig
from graphrec.encoders.config import EncodersConfig
from graphrec.evaluation.config import EvalConfig, SuiteConfig
from graphrec.nn.config import ModelConfig
from graphrec.paths import RunPaths
from graphrec.training.config import TrainConfig

__all__ = ["Config", "ConfigError", "RunPaths", "load_config"]


@dataclass
class Config(StrictConfig):
    """graphrec pipeline configuration (prepare -> split -> encode -> train -> evaluate)."""

    run_dir: str = opt("runs/ml1m-mm", "Directory of this run: prepared data, split, features, model, report.")
    device: str = opt("auto", "Where the encoders, GraphRec training, evaluation and serving compute: auto (the first GPU "
                              "when torch sees one, else the CPU), cpu, cuda or cuda:N. Not part of any stage's inputs "
                              "(switching it reruns nothing); baselines, negative sampling and the evaluation/serving "
                              "indexes stay on the CPU (graphrec.devices).")
    data: DataConfig = opt(DataConfig, "Raw data set and how to read it.")
    split: SplitConfig = opt(SplitConfig, "Item cold-start split.")
    encoders: EncodersConfig = opt(EncodersConfig, "Item text and image encoders and the feature store.")
    model: ModelConfig = opt(ModelConfig, "The GraphRec model.")
    train: TrainConfig = opt(TrainConfig, "Training of GraphRec.")
    eval: EvalConfig = opt(EvalConfig, "Evaluation protocol: settings, cut-offs, confidence intervals.")
    suite: SuiteConfig = opt(SuiteConfig, "What `graphrec evaluate` runs: GraphRec seeds, baselines, warm oracle.")
    baselines: BaselinesConfig = opt(BaselinesConfig, "Baselines evaluated side by side, with their tuning budgets.")
    benchmark: BenchmarkConfig = opt(BenchmarkConfig, "Item k-fold benchmark (`graphrec benchmark`): runs, folds, parallelism, statistics.")

    def validate(self) -> None:
        from graphrec.devices import check_device_spec

        try:
            self.device = check_device_spec(self.device)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def resolved_device(self):
        """The :class:`torch.device` that ``device`` names on this machine (ConfigError naming the key if absent)."""
        from graphrec.devices import resolve_device

        try:
            return resolve_device(self.device)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    @property
    def paths(self) -> RunPaths:
        return RunPaths(Path(self.run_dir))


def parse_overrides(pairs: list[str]) -> dict[str, object]:
    """``["train.lr=0.01", "split.seed=3"]`` -> dotted-key dict (values parsed as YAML scalars)."""
    import yaml

    out: dict[str, object] = {}
    for p in pairs:
        if "=" not in p:
            raise ConfigError(f"--set expects key=value, got {p!r}")
        k, v = p.split("=", 1)
        out[k.strip()] = yaml.safe_load(v)
    return out


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Defaults, then the YAML file (if any), then ``--set`` overrides; all strict."""
    cfg = Config.load_yaml(path) if path else Config()
    return cfg.with_overrides(parse_overrides(overrides or []))
