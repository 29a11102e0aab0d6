"""A tiny MovieLens-style data set on disk (for ``graphrec init`` and the service tests).

``ratings.csv``: ``userId,movieId,rating,timestamp`` (1-5 stars, Unix seconds);
``movies.csv``: ``movieId,title,year,genres`` (``|``-separated genres, no images);
``users.csv``: ``userId,gender,age,occupation,zip``. Users prefer one genre, so a text model
has something to learn; a few ratings name a movie that is not in ``movies.csv``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

GENRES = ["Comedy", "Drama", "Action", "Horror", "Animation", "Romance"]
WORDS = {"Comedy": "Laughs", "Drama": "Tears", "Action": "Explosions", "Horror": "Screams",
         "Animation": "Cartoons", "Romance": "Kisses"}


def write_movielens_style(root: Path, n_users: int = 40, n_movies: int = 60, per_user: int = 12,
                          seed: int = 0, images: bool = False) -> dict[str, Path]:
    """Write the three files under ``root``; returns their paths (``images``: add a poster column)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    g1 = rng.integers(0, len(GENRES), n_movies)
    g2 = (g1 + rng.integers(1, len(GENRES), n_movies)) % len(GENRES)
    movies = pd.DataFrame({
        "movieId": np.arange(1, n_movies + 1),
        "title": [f"{WORDS[GENRES[a]]} and {WORDS[GENRES[b]]} {i} ({1980 + i % 30})" for i, (a, b) in enumerate(zip(g1, g2))],
        "year": [1980 + i % 30 for i in range(n_movies)],
        "genres": [f"{GENRES[a]}|{GENRES[b]}" if i % 7 else GENRES[a] for i, (a, b) in enumerate(zip(g1, g2))],
    })
    if images:
        from PIL import Image

        (root / "posters").mkdir(exist_ok=True)
        paths = []
        for i, a in zip(movies["movieId"], g1):
            col = tuple(int(v) for v in np.array([(37 * a) % 255, (91 * a) % 255, (53 * a + 80) % 255]))
            Image.new("RGB", (20, 30), col).save(root / "posters" / f"{i}.jpg")
            paths.append(f"posters/{i}.jpg")
        movies["poster"] = paths
    rows = []
    for u in range(1, n_users + 1):
        fav = rng.integers(0, len(GENRES))
        liked = np.flatnonzero((g1 == fav) | (g2 == fav))
        other = np.flatnonzero((g1 != fav) & (g2 != fav))
        pick = np.concatenate([rng.choice(liked, min(len(liked), per_user * 2 // 3), replace=False),
                               rng.choice(other, per_user // 3, replace=False)])
        for m in pick:
            stars = int(rng.integers(4, 6)) if m in liked else int(rng.integers(1, 4))
            rows.append((u, int(m) + 1, stars, 978_300_000 + int(rng.integers(0, 3_000_000))))
    rows.append((1, n_movies + 99, 5, 978_300_000))  # a movie missing from movies.csv
    ratings = pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp"])
    users = pd.DataFrame({"userId": np.arange(1, n_users + 1), "gender": rng.choice(["F", "M"], n_users),
                          "age": rng.choice([18, 25, 35, 45], n_users), "occupation": rng.integers(0, 5, n_users),
                          "zip": [f"{z:05d}" for z in rng.integers(10000, 99999, n_users)]})
    out = {"ratings": root / "ratings.csv", "movies": root / "movies.csv", "users": root / "users.csv"}
    ratings.to_csv(out["ratings"], index=False)
    movies.to_csv(out["movies"], index=False)
    users.to_csv(out["users"], index=False)
    return out


#: Overrides that make a run on this data fast and encoder-free (tests.fakes encoders).
FAST = {"encoders.text.name": "fake_text", "encoders.image.name": "fake_image", "encoders.num_workers": 0,
        "model.dim": 16, "model.proj_hidden": 16, "train.epochs": 2, "train.batch_size": 256,
        "train.num_negatives": 16, "train.tensorboard": False, "train.warm_refine_epochs": 1,
        "suite.seeds": [0], "suite.oracle": False, "baselines.names": ["popularity", "content_knn"],
        "eval.bootstrap_samples": 10}


def build_trained_run(root: Path, images: bool = True, seed: int = 0):
    """``graphrec init`` on a MovieLens-style data set, then prepare, split, encode and train (fake encoders).

    Returns ``(run_dir, config)``; no evaluation (the service needs only the model).
    """
    import fakes  # noqa: F401  (registers fake_text / fake_image)

    from graphrec import stages
    from graphrec.config import load_config
    from graphrec.init_config import propose_config, write_config

    files = write_movielens_style(root / "data", seed=seed, images=images)
    prop = propose_config(files["ratings"], files["movies"], run_dir=str(root / "run"), relative_to=root)
    write_config(prop, root / "config.yaml")
    cfg = load_config(root / "config.yaml").with_overrides(FAST)
    cfg = cfg.replace(data=cfg.data.replace(source=str(root / cfg.data.source)))
    quiet = lambda *_: None  # noqa: E731
    stages.stage_prepare(cfg, log=quiet)
    stages.stage_split(cfg, log=quiet)
    feats = stages.stage_encode(cfg, log=quiet, progress=False)
    stages.stage_train(cfg, feats, log=quiet, progress=False)
    return Path(cfg.run_dir), cfg
