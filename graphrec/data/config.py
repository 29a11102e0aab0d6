"""Configuration of data preparation and of the item cold-start split."""

from __future__ import annotations

from dataclasses import dataclass

from graphrec.config_base import ConfigError, StrictConfig, opt


@dataclass
class DataConfig(StrictConfig):
    """Where the raw data set is and how to read it into the canonical tables."""

    source: str = opt("../shared/data/ml1m-mm", "Raw data set directory (ml1m-mm format) or, for format=generic, the directory the file options are relative to.")
    format: str = opt("ml1m-mm", "Raw format: 'ml1m-mm' (MovieLens-1M with posters and plots) or 'generic' (interactions file + items file, columns below).")
    interactions_file: str = opt("interactions.csv", "generic: interactions file (CSV; .tsv read with tabs).")
    items_file: str = opt("items.csv", "generic: items file (CSV; .tsv read with tabs).")
    user_col: str = opt("user_id", "generic: user id column of the interactions file.")
    item_col: str = opt("item_id", "generic: item id column of both files.")
    timestamp_col: str | None = opt(None, "generic: optional timestamp column (kept for sequence-aware models).")
    rating_col: str | None = opt(None, "generic: optional rating column; rows below rating_threshold are not positives.")
    rating_threshold: float = opt(4.0, "generic: ratings >= this are implicit positives (with rating_col).")
    text_cols: list[str] = opt(["title"], "generic: item text columns, joined with '. ' into the text to encode.")
    title_col: str | None = opt(None, "generic: column shown as the item title (default: first text column).")
    image_col: str | None = opt(None, "generic: optional image path column (relative to the items file's directory, or absolute).")
    genres_col: str | None = opt(None, "generic: optional '|'-separated category column (used by masked-attribute objectives and plots).")
    users_file: str | None = opt(None, "User attributes for the fairness audit only (never model input). None: the format's default (ml1m-mm: users.dat in source when present; generic: none); a path relative to source (ml1m-mm: users.dat format; generic: CSV/TSV); '' = no users file (the audit then groups users by activity only).")
    user_id_col: str = opt("user_id", "generic: user id column of users_file.")
    user_attribute_cols: list[str] = opt([], "generic: columns of users_file audited as user groups (e.g. [gender, age]); empty = every column but user_id_col.")
    min_user_interactions: int = opt(2, "Users with fewer positives are skipped (counted in the prep report): they cannot be split.")
    max_items: int = opt(0, "Keep a seeded random sample of this many items and their interactions (0 = all); for quick runs, notebooks and CI. Counted in the prep report.")
    sample_seed: int = opt(0, "Seed of the item sample (with max_items).")

    def validate(self) -> None:
        if self.format not in ("ml1m-mm", "generic"):
            raise ConfigError(f"data.format: {self.format!r} is not one of ['ml1m-mm', 'generic']")
        if self.min_user_interactions < 1:
            raise ConfigError("data.min_user_interactions must be >= 1")
        if not self.text_cols and self.image_col is None:
            raise ConfigError("data.text_cols: at least one text column or an image_col is needed")


@dataclass
class SplitConfig(StrictConfig):
    """Item cold-start split (ALDI/GAR protocol)."""

    seed: int = opt(2024, "Seed of the split; the same seed gives the same files.")
    cold_item_frac: float = opt(0.2, "Share of the items with interactions that become cold.")
    cold_val_share: float = opt(0.5, "Share of the cold items that go to cold-validation (the rest: cold-test).")
    warm_val_frac: float = opt(0.1, "Per user, share of warm interactions for warm-validation.")
    warm_test_frac: float = opt(0.1, "Per user, share of warm interactions for warm-test.")

    def validate(self) -> None:
        for name in ("cold_item_frac", "cold_val_share", "warm_val_frac", "warm_test_frac"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise ConfigError(f"split.{name}: {v} must be in [0, 1)")
        if self.warm_val_frac + self.warm_test_frac >= 1.0:
            raise ConfigError("split.warm_val_frac + split.warm_test_frac must be < 1")
