"""The whole pipeline's configuration: one YAML file, one section per stage.

Precedence: command-line ``--set section.key=value`` overrides > the YAML file > the defaults
declared here and in each section's dataclass. Unknown keys are errors that name the key.
``graphrec config --reference`` prints every option (docs/CONFIG.md is generated from it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from graphrec.config_base import ConfigError, StrictConfig, accepts_str, field_type, opt
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

    def validate(self) -> None:
        """Checks across sections, at load time (before any stage runs); each names its keys."""
        from graphrec.devices import check_device_spec

        try:
            self.device = check_device_spec(self.device)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if not str(self.run_dir).strip():
            raise ConfigError("run_dir: must name a directory")
        vs = self.train.val_setting
        if vs in ("cold", "cold_full") and (self.split.cold_item_frac == 0 or self.split.cold_val_share == 0):
            key = "split.cold_item_frac" if self.split.cold_item_frac == 0 else "split.cold_val_share"
            raise ConfigError(f"{key}: is 0, so the split has no cold-validation items, but train.val_setting={vs!r} "
                              "early-stops on them; make it > 0 or set train.val_setting: warm")
        if vs == "warm" and self.split.warm_val_frac == 0:
            raise ConfigError("split.warm_val_frac: is 0, so there are no warm-validation interactions, but "
                              "train.val_setting='warm' early-stops on them")
        if self.train.user_view == "sequence" and (self.data.format == "ml1m-mm" or not self.data.timestamp_col):
            raise ConfigError("train.user_view: 'sequence' needs interaction timestamps, and "
                              + ("ml1m-mm has none" if self.data.format == "ml1m-mm" else "data.timestamp_col is not set")
                              + "; use 'auto' or 'set'")
        self._check_encoders()
        self._check_template()
        from graphrec.baselines import check_grids

        check_grids(self.baselines)

    def _check_encoders(self) -> None:
        from graphrec.encoders.base import list_encoders
        from graphrec.encoders.pipeline import encoder_name

        for m in self.encoders.enabled:
            name = encoder_name(m, self.encoders)
            if name not in list_encoders():
                raise ConfigError(f"encoders.{m}.name: unknown encoder {name!r}; registered: {list_encoders()}")

    def _check_template(self) -> None:
        from graphrec.data.fields import prepared_item_fields
        from graphrec.encoders.template import DEFAULT_TEMPLATE, parse_template

        tpl = self.encoders.text.template
        if "text" not in self.encoders.enabled or tpl is None or tpl == DEFAULT_TEMPLATE:
            return  # the default falls back to `text` on a table without its columns (and says so)
        have = prepared_item_fields(self.data)
        missing = [f for f in parse_template(tpl).fields if f not in have]
        if missing:
            raise ConfigError(template_error(tpl, missing, have, f"data.format={self.data.format!r}"))


def template_error(template: str, missing: list[str], have: list[str], where: str) -> str:
    """The message for a text template naming columns the prepared items table lacks."""
    return (f"encoders.text.template: {template!r} names {', '.join('{' + m + '}' for m in missing)}, which the prepared "
            f"items table ({where}) does not have; its fields are {', '.join('{' + h + '}' for h in have)} (generic data: "
            "every data.text_cols column, lower case, other characters as _; README: Template fields)")


def parse_overrides(pairs: list[str], cls: type[StrictConfig] | None = None) -> dict[str, object]:
    """``["train.lr=0.01", "split.seed=3"]`` -> dotted-key dict.

    Values are read as YAML (``[a, b]`` is a list, ``0.01`` a number, ``null`` None). For a key
    whose type is a string (``cls``'s declared type; default :class:`Config`), the text is taken
    as it is unless YAML reads it as a string or null, so ``encoders.text.template={title} ({year})``
    needs no quoting. A value that is not valid YAML for any other key is an error naming the key.
    """
    import yaml

    cls = cls or Config
    out: dict[str, object] = {}
    for p in pairs:
        if "=" not in p:
            raise ConfigError(f"--set expects key=value, got {p!r}")
        k, v = p.split("=", 1)
        k = k.strip()
        if not k:
            raise ConfigError(f"--set expects key=value, got {p!r} (no key)")
        tp = field_type(cls, k)
        try:
            value = yaml.safe_load(v)
            bad_yaml = None
        except yaml.YAMLError as exc:
            value, bad_yaml = v, exc
        if tp is not None and accepts_str(tp) and (bad_yaml is not None or not (value is None or isinstance(value, str))):
            value = v  # a string key: the text as given (braces, colons, ...)
        elif bad_yaml is not None:
            why = str(bad_yaml).splitlines()[0]
            raise ConfigError(f"--set {k}: {v!r} is not a valid value ({why}); quote it or check the brackets")
        out[k] = value
    return out


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Defaults, then the YAML file (if any), then ``--set`` overrides; all strict."""
    cfg = Config.load_yaml(path) if path else Config()
    return cfg.with_overrides(parse_overrides(overrides or []))
