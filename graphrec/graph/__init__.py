"""Graph construction: HeteroData from the train split, normalised adjacency, content kNN."""

from graphrec.graph.build import (
    build_hetero,
    centred_normalised,
    item_degree,
    knn_graph_to_sources,
    normalized_adjacency,
)

__all__ = ["build_hetero", "centred_normalised", "item_degree", "knn_graph_to_sources", "normalized_adjacency"]
