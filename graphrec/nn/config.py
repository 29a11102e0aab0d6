"""Configuration of the graphrec model (the ``model`` section of a run config)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from graphrec.config_base import ConfigError, StrictConfig, opt


@dataclass
class ModelConfig(StrictConfig):
    """The GraphRec model: content item tower, fusion, LightGCN propagation, content kNN graph."""

    dim: int = opt(64, help="Embedding size shared by users, items and every modality view.")
    num_layers: int = opt(3, help="LightGCN propagation layers over the train user-item graph.")
    modalities: list[str] = opt(["text", "image"], help="Item feature sets (RecData.features keys) fed to the item tower.")
    proj_hidden: int = opt(256, help="Hidden width of each modality projector (LayerNorm-Linear-GELU-Linear).")
    dropout: float = opt(0.1, help="Dropout inside the modality projectors.")
    fusion: Literal["gated", "mean"] = opt("gated", help="Fusion over available modalities: learned gated attention or masked mean.")
    use_id_embedding: bool = opt(True, help="Add a learned ID embedding to warm items (a correction; cold items never have one).")
    id_dropout: float = opt(0.5, help="DropoutNet-style probability of dropping a warm item's ID correction during training.")
    knn_k: int = opt(10, help="Warm neighbours per item in the item-item content kNN graph (0 disables it).")
    knn_temperature: float = opt(0.05, help="Softmax temperature over the kNN cosine similarities (message weights).")
    knn_modalities: list[str] = opt([], help="Feature sets used for the kNN similarity (and the content score terms); empty = the model's modalities.")
    reduce_dim: int = opt(512, help="Modalities wider than this enter their projector through a fixed PCA to this many components, fitted on warm train items (0 = off). EfficientNet's 1280-d image features cost 2.5x less per step at 512.")
    backbone_dim: int = opt(64, help="Size of the collaborative backbone (an ID-only LightGCN trained to convergence on warm interactions after the GNN; used for warm items and carried over to cold items through their content neighbours; 0 = none).")
    transfer_k: int = opt(20, help="Content neighbours (warm items) whose backbone vectors a cold item's CF transfer term averages.")
    content_text_weight: float | None = opt(None, help="Share of the text modality in the content vectors of the content-walk and popularity-prior terms (the rest split over the other knn_modalities; null = equal shares). The calibration sets it when train.calibrate_text_weight lists values; the kNN graph of the cold view keeps equal shares.")
    prior_ridge: float = opt(1.0, help="Ridge strength of the content -> log-popularity regression behind the popularity-prior score term of cold items (fitted on warm train items).")
    learned_walk: bool = opt(True, help="Add the learned content walk to cold items' scores: the content walk with a metric trained to predict held-out train interactions from a user's other train items (graphrec/nn/content_walk.py; fitted after the GNN, weight chosen by the calibration; train.walk_* options).")
    walk_dim: int = opt(0, help="Width of the learned walk's space (0 = the width of the kNN content vectors, starting from the identity; smaller = starting from their PCA basis).")
    walk_temperature: float = opt(0.05, help="Temperature of the learned walk's cosine.")
    walk_codes: bool = opt(False, help="Learned walk: add a learned code of each of the user's train items to the walk's user side (a Mult-DAE encoder's item embeddings: what taking an item says about a user's taste beyond its content); the item side stays content alone, so cold and added items score as before. Trained with the walk (graphrec/nn/content_walk.py).")

    def validate(self) -> None:
        if self.dim < 1:
            raise ConfigError(f"dim: must be >= 1, got {self.dim}")
        if self.num_layers < 0:
            raise ConfigError(f"num_layers: must be >= 0, got {self.num_layers}")
        if not self.modalities:
            raise ConfigError("modalities: at least one feature set is needed (items are represented from content)")
        if len(set(self.modalities)) != len(self.modalities):
            raise ConfigError(f"modalities: duplicate names in {self.modalities}")
        if self.proj_hidden < 1:
            raise ConfigError(f"proj_hidden: must be >= 1, got {self.proj_hidden}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout: must be in [0, 1), got {self.dropout}")
        if not 0.0 <= self.id_dropout <= 1.0:
            raise ConfigError(f"id_dropout: must be in [0, 1], got {self.id_dropout}")
        if self.knn_k < 0:
            raise ConfigError(f"knn_k: must be >= 0, got {self.knn_k}")
        if self.backbone_dim < 0 or self.transfer_k < 1:
            raise ConfigError(f"backbone_dim/transfer_k: need >= 0 / >= 1, got {self.backbone_dim}/{self.transfer_k}")
        if self.reduce_dim < 0:
            raise ConfigError(f"reduce_dim: must be >= 0, got {self.reduce_dim}")
        if self.prior_ridge <= 0:
            raise ConfigError(f"prior_ridge: must be > 0, got {self.prior_ridge}")
        if self.content_text_weight is not None and not 0.0 <= self.content_text_weight <= 1.0:
            raise ConfigError(f"content_text_weight: must be in [0, 1] or null, got {self.content_text_weight}")
        if self.walk_dim < 0 or self.walk_temperature <= 0:
            raise ConfigError(f"walk_dim/walk_temperature: need >= 0 / > 0, got {self.walk_dim}/{self.walk_temperature}")
        if self.knn_temperature <= 0:
            raise ConfigError(f"knn_temperature: must be > 0, got {self.knn_temperature}")

    def restricted_to(self, available) -> "ModelConfig":
        """This config with ``modalities`` / ``knn_modalities`` cut to the feature sets in ``available``.

        E.g. ``encoders.enabled: [text]`` trains a text-only model instead of failing on the
        missing image features. Raises ConfigError when none of the model's modalities is there.
        """
        have = [m for m in self.modalities if m in available]
        if not have:
            raise ConfigError(f"model.modalities {self.modalities}: no such feature set was encoded "
                              f"(have {sorted(available)}); check encoders.enabled")
        if have == list(self.modalities):
            return self
        return self.replace(modalities=have, knn_modalities=[m for m in self.knn_modalities if m in available])
