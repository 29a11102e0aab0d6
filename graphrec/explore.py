"""Exploration helpers used by the notebooks (which define no logic of their own).

Data: :func:`interaction_stats`, :func:`plot_long_tail`, :func:`show_items`.
Embeddings: :func:`item_map_2d`, :func:`plot_item_map`, :func:`cross_modal_retrieval`,
:func:`nearest_warm_neighbours`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch


def interaction_stats(interactions: pd.DataFrame, items: pd.DataFrame) -> pd.Series:
    """Counts, density and the long tail of a canonical interactions table."""
    per_item = interactions.groupby("item_id").size().sort_values(ascending=False)
    per_user = interactions.groupby("user_id").size()
    top20 = per_item.iloc[: max(1, int(0.2 * len(per_item)))].sum() / per_item.sum()
    return pd.Series({
        "interactions": len(interactions), "users": interactions.user_id.nunique(),
        "items in catalogue": len(items), "items with interactions": per_item.size,
        "density": len(interactions) / (interactions.user_id.nunique() * max(1, per_item.size)),
        "median interactions per user": float(per_user.median()),
        "median interactions per item": float(per_item.median()),
        "share of interactions on the top 20% items": float(top20),
        "items without image": int((items.image_path.fillna("") == "").sum()),
    })


def plot_long_tail(interactions: pd.DataFrame, ax=None):
    """Item popularity by rank (log scale) and the user activity histogram."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(1, 2, figsize=(11, 3.5))
    pop = interactions.groupby("item_id").size().sort_values(ascending=False).to_numpy()
    ax[0].plot(np.arange(1, len(pop) + 1), pop)
    ax[0].set(xscale="log", yscale="log", xlabel="item rank", ylabel="interactions", title="item popularity (long tail)")
    act = interactions.groupby("user_id").size().to_numpy()
    ax[1].hist(act, bins=np.logspace(0, np.log10(act.max() + 1), 40))
    ax[1].set(xscale="log", xlabel="interactions per user", ylabel="users", title="user activity")
    return ax


def show_items(items: pd.DataFrame, item_ids: list[str], text_chars: int = 160, cols: int = 4):
    """Posters with titles and the start of their text."""
    import matplotlib.pyplot as plt
    from PIL import Image

    sel = items.set_index("item_id").loc[[str(i) for i in item_ids]]
    rows = -(-len(sel) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 4.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (iid, row) in zip(axes.flat, sel.iterrows()):
        path = row.get("image_path", "")
        if isinstance(path, str) and path:
            try:
                ax.imshow(Image.open(path).convert("RGB"))
            except OSError:
                ax.text(0.5, 0.5, "unreadable image", ha="center")
        else:
            ax.text(0.5, 0.5, "no image", ha="center")
        text = str(row.get("text", ""))[:text_chars]
        ax.set_title(f"{row.get('title', iid)}\n" + "\n".join(text[i:i + 40] for i in range(0, len(text), 40)), fontsize=7)
    fig.tight_layout()
    return fig


def item_map_2d(emb: torch.Tensor, method: str = "pca", seed: int = 0) -> np.ndarray:
    """2-D coordinates of item embeddings: ``"pca"`` (exact, fast) or ``"tsne"`` (scikit-learn)."""
    x = torch.nn.functional.normalize(emb.float(), dim=-1).numpy()
    if method == "tsne":
        from sklearn.manifold import TSNE

        return TSNE(2, init="pca", random_state=seed, perplexity=min(30, len(x) - 1)).fit_transform(x)
    x = x - x.mean(0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    return x @ vt[:2].T


def plot_item_map(coords: np.ndarray, items: pd.DataFrame, genres: list[str] | None = None, ax=None, top: int = 6):
    """Scatter of item coordinates coloured by each item's first genre (the ``top`` most common)."""
    import matplotlib.pyplot as plt

    first = items["genres"].fillna("").astype(str).str.split("|").str[0].replace("", "(none)").to_numpy()
    genres = genres or pd.Series(first).value_counts().index[:top].tolist()
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 6))
    other = ~np.isin(first, genres)
    ax.scatter(coords[other, 0], coords[other, 1], s=4, c="lightgrey", label="other")
    for g in genres:
        m = first == g
        ax.scatter(coords[m, 0], coords[m, 1], s=6, label=g)
    ax.legend(markerscale=3, fontsize=8)
    ax.set_title("item embeddings, coloured by first genre")
    return ax


@torch.no_grad()
def cross_modal_retrieval(model, data, query_item_ids: list[str], direction: str = "text->image", k: int = 5) -> pd.DataFrame:
    """Retrieve items of one modality's view from another's (e.g. a plot text -> posters).

    Uses the model's per-modality projections (the views aligned by the cross-modal InfoNCE).
    Returns one row per (query, rank) with the retrieved item's title.
    """
    src, dst = direction.split("->")
    feats = {m: (data.features[m].x, data.features[m].mask) for m in model.modalities}
    model.eval()
    _, _, views = model.content_views(feats)
    q = torch.nn.functional.normalize(views[src], dim=-1)
    t = torch.nn.functional.normalize(views[dst], dim=-1)
    t = torch.where(data.features[dst].mask.unsqueeze(-1), t, torch.zeros_like(t))
    titles = data.items.set_index("item_id")["title"]
    rows = []
    for qid in query_item_ids:
        i = data.item_index[str(qid)]
        s, idx = torch.topk(t @ q[i], k)
        for r, (sc, j) in enumerate(zip(s.tolist(), idx.tolist()), 1):
            rows.append({"query": titles.get(str(qid), qid), "rank": r, f"retrieved ({dst})": titles.get(data.item_ids[j], data.item_ids[j]),
                         "score": round(sc, 3), "is_query_item": j == i})
    return pd.DataFrame(rows)


@torch.no_grad()
def nearest_warm_neighbours(model, data, item_id: str, k: int = 8) -> pd.DataFrame:
    """The warm items nearest a (cold) item in the model's final item space."""
    _, emb = model.embeddings()
    i = data.item_index[str(item_id)]
    warm = torch.zeros(data.num_items, dtype=torch.bool)
    warm[torch.unique(data.train[1])] = True
    warm[i] = False
    sims = emb @ emb[i]
    sims[~warm] = float("-inf")
    s, idx = torch.topk(sims, k)
    items = data.items.set_index("item_id")
    return pd.DataFrame({"item_id": [data.item_ids[j] for j in idx.tolist()],
                         "title": [items.loc[data.item_ids[j], "title"] for j in idx.tolist()],
                         "genres": [items.loc[data.item_ids[j], "genres"] for j in idx.tolist()],
                         "cosine": [round(v, 3) for v in s.tolist()]})
