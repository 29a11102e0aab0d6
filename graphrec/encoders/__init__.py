"""Item encoders (text, image) behind one protocol, and a fingerprinted feature store.

Importing this package is cheap: torch models, sentence-transformers, timm and open_clip
are imported only when an encoder first needs its model.
"""

from graphrec.encoders._compat import ensure_torchvision_importable
from graphrec.encoders.base import (
    EncodeResult,
    Encoder,
    build_encoder,
    file_sha256,
    fingerprint_of,
    list_encoders,
    register_encoder,
)
from graphrec.encoders.clip import OpenCLIPImageEncoder, OpenCLIPTextEncoder, load_open_clip
from graphrec.encoders.config import DEFAULT_TEMPLATE, EncodersConfig, ImageEncoderConfig, TextEncoderConfig
from graphrec.encoders.efficientnet import EfficientNetLite0Encoder, map_lite0_state_dict
from graphrec.encoders.engine import encode_items
from graphrec.encoders.images import ImageEncoderBase, load_rgb
from graphrec.encoders.mpnet import MPNetEncoder, ensure_mpnet
from graphrec.encoders.pipeline import check_items, encode_items_local, encoder_from_config
from graphrec.encoders.ray_engine import encode_items_ray
from graphrec.encoders.store import FeatureStore, StoredFeatures
from graphrec.encoders.text import SentenceTransformerEncoder, TextEncoderBase, build_texts, parse_template

__all__ = [
    "DEFAULT_TEMPLATE", "EfficientNetLite0Encoder", "EncodeResult", "Encoder", "EncodersConfig", "FeatureStore",
    "ImageEncoderBase", "ImageEncoderConfig", "MPNetEncoder", "OpenCLIPImageEncoder", "OpenCLIPTextEncoder",
    "SentenceTransformerEncoder", "StoredFeatures", "TextEncoderBase", "TextEncoderConfig", "build_encoder",
    "build_texts", "check_items", "encode_items", "encode_items_local", "encode_items_ray", "encoder_from_config",
    "ensure_mpnet", "ensure_torchvision_importable",
    "file_sha256", "fingerprint_of", "list_encoders", "load_open_clip", "load_rgb", "map_lite0_state_dict",
    "parse_template", "register_encoder",
]
