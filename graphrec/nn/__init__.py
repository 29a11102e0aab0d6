"""Neural modules: modality projectors, fusion, LightGCN propagation, the GraphRec model."""

from graphrec.nn.config import ModelConfig
from graphrec.nn.fusion import GatedFusion, MaskedMeanFusion
from graphrec.nn.gnn import LightGCNPropagation
from graphrec.nn.content_vectors import walk_width
from graphrec.nn.model import GraphRec
from graphrec.nn.projector import ModalityProjector

__all__ = ["GatedFusion", "GraphRec", "LightGCNPropagation", "MaskedMeanFusion", "ModalityProjector", "ModelConfig", "build_model"]


def build_model(cfg: ModelConfig, num_users: int, num_items: int, modality_dims: dict[str, int]) -> GraphRec:
    """Construct a :class:`GraphRec` from its config section."""
    return GraphRec(
        num_users, num_items, {m: modality_dims[m] for m in cfg.modalities}, dim=cfg.dim, num_layers=cfg.num_layers,
        proj_hidden=cfg.proj_hidden, dropout=cfg.dropout, fusion=cfg.fusion, use_id_embedding=cfg.use_id_embedding,
        id_dropout=cfg.id_dropout, knn_k=cfg.knn_k, knn_temperature=cfg.knn_temperature,
        knn_modalities=cfg.knn_modalities or None, prior_ridge=cfg.prior_ridge,
        reduce_dim=cfg.reduce_dim, backbone_dim=cfg.backbone_dim, transfer_k=cfg.transfer_k,
        content_text_weight=cfg.content_text_weight, walk_in_dim=_walk_in_dim(cfg, modality_dims),
        walk_dim=cfg.walk_dim, walk_temperature=cfg.walk_temperature, walk_codes=cfg.walk_codes,
    )


def _walk_in_dim(cfg: ModelConfig, modality_dims: dict[str, int]) -> int:
    """Width of the learned walk's input (:func:`~graphrec.nn.content_vectors.walk_width`); 0 = no walk."""
    return walk_width(cfg.knn_modalities or cfg.modalities, cfg.content_text_weight, modality_dims) if cfg.learned_walk else 0
