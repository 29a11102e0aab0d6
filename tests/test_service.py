"""The HTTP service, started on 127.0.0.1 and spoken to with a real HTTP client (httpx)."""

from __future__ import annotations

import base64
import io
import threading

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

import fakes  # noqa: E402,F401  (registers fake_text / fake_image)
from mlstyle import build_trained_run  # noqa: E402

from graphrec.serve import Recommender  # noqa: E402
from graphrec.service import BackgroundServer, create_app  # noqa: E402


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run, _ = build_trained_run(tmp_path_factory.mktemp("service"), images=True)
    return run


@pytest.fixture(scope="module")
def server(run_dir):
    with BackgroundServer(create_app(run_dir, model="single")) as srv:
        yield srv


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


def _png(color=(200, 30, 30)) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (12, 18), color).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_health_and_model_info(client, server):
    assert server.host == "127.0.0.1"
    h = client.get("/health")
    assert h.status_code == 200 and h.json()["status"] == "ok"
    info = client.get("/model").json()
    assert info["modalities"] == ["text", "image"] and info["users"] == h.json()["users"] > 0
    assert info["item_fields"] == ["item_id", "title", "year", "genres", "image_path"]
    assert set(info["fingerprints"]) == {"text", "image"}


def test_recommendations_match_the_recommender_and_exclude_history(client, run_dir):
    rec = Recommender.load(run_dir, model="single")
    user = rec.model.user_ids[3]
    body = client.get(f"/users/{user}/recommendations", params={"k": 7}).json()
    want = rec.recommend([user], k=7)
    assert [i["item_id"] for i in body["items"]] == want["item_id"].tolist()
    assert [i["rank"] for i in body["items"]] == list(range(1, 8))
    torch.testing.assert_close(torch.tensor([i["score"] for i in body["items"]]),
                               torch.tensor(want["score"].tolist()), atol=1e-5, rtol=0)
    hist = client.get(f"/users/{user}/history", params={"limit": 1000}).json()
    assert hist["total"] == len(hist["items"]) > 0
    assert not {i["item_id"] for i in hist["items"]} & {i["item_id"] for i in body["items"]}
    train = pd.read_csv(run_dir / "split" / "train.csv", dtype=str)
    for it in body["items"] + hist["items"]:
        assert it["cold"] == (it["item_id"] not in set(train["item_id"]))
        assert it["image_url"] == f"/items/{it['item_id']}/image"
    img = client.get(body["items"][0]["image_url"])
    assert img.status_code == 200 and img.headers["content-type"] == "image/jpeg" and img.content[:2] == b"\xff\xd8"


def test_errors_are_json_naming_the_field(client):
    r = client.get("/users/nobody/recommendations")
    assert r.status_code == 404 and r.json()["field"] == "user_id" and "nobody" in r.json()["error"]
    for bad in ("0", "-3", "abc", "100000"):
        r = client.get("/users/1/recommendations", params={"k": bad})
        assert r.status_code == 422 and r.json()["field"] == "k", bad
    r = client.get("/items/nope/similar")
    assert r.status_code == 404 and r.json() == {"error": "unknown item id 'nope'", "field": "item_id"}
    r = client.post("/items", json={"items": [{"item_id": "bad1", "title": "A film", "genres": "Drama"},
                                              {"item_id": "bad2", "title": "", "genres": "", "year": ""}]})
    assert r.status_code == 400 and r.json()["field"] == "item_id" and r.json()["row"] == 1
    assert r.json()["error"].startswith("items[1]:")
    r = client.post("/items", content=b"item_id,title\n1,Already there\n", headers={"content-type": "text/csv"})
    assert r.status_code == 400 and r.json()["field"] == "item_id" and "line 2" in r.json()["error"]
    r = client.post("/items", json={"items": [{"item_id": "bad3", "title": "x", "image_base64": "not base64!"}]})
    assert r.status_code == 400 and r.json()["field"] == "image_base64"
    r = client.post("/items", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["field"] == "items"
    r = client.post("/items", json={"items": [{"item_id": "bad4", "colour": "red", "title": "x"}]})
    assert r.status_code == 400 and r.json()["field"] == "colour" and "unknown column" in r.json()["error"]
    assert client.get("/items/bad1").status_code == 404  # a bad batch adds nothing


def test_post_item_whose_only_content_is_unreadable_is_refused(client, tmp_path):
    fake = tmp_path / "poster.jpg"
    fake.write_text("a text file named .jpg")
    r = client.post("/items", json={"items": [{"item_id": "bad5", "image_path": str(fake)}]})
    assert r.status_code == 400 and r.json()["field"] == "image_path" and "no usable content" in r.json()["error"]
    assert client.get("/items/bad5").status_code == 404


def test_post_items_json_and_csv_recommendable_at_once_and_persisted(client, run_dir):
    before = client.get("/health").json()["items"]
    r = client.post("/items", json={"items": [{"item_id": "n1", "title": "Laughs and Kisses 2024", "year": 2024,
                                               "genres": "Comedy|Romance", "image_base64": _png()}]})
    assert r.status_code == 201, r.text
    added = r.json()["added"][0]
    assert added["cold"] and added["added"] and added["image_url"] == "/items/n1/image"
    assert client.get("/items/n1/image").content[:4] == b"\x89PNG"
    r = client.post("/items", content=b"item_id,title,genres\nn2,Screams and Tears 2024,Horror|Drama\n",
                    headers={"content-type": "text/csv"})
    assert r.status_code == 201 and r.json()["total_items"] == before + 2
    # recommendable at once: with seen items included, every user's full ranking holds them
    user = client.get("/users", params={"limit": 1}).json()["users"][0]["user_id"]
    ranked = client.get(f"/users/{user}/recommendations", params={"k": 1000, "include_seen": True}).json()["items"]
    assert {"n1", "n2"} <= {i["item_id"] for i in ranked}
    aud = client.get("/items/n1/audience", params={"k": 10}).json()
    assert aud["total_users"] > 0 and all(u["rank"] <= 10 for u in aud["users"])
    for u in aud["users"][:3]:  # the audience is exactly who gets it in their top 10
        top = client.get(f"/users/{u['user_id']}/recommendations", params={"k": 10}).json()["items"]
        assert "n1" in [i["item_id"] for i in top]
    sim = client.get("/items/n1/similar", params={"k": 5}).json()["items"]
    assert len(sim) == 5 and "n1" not in {i["item_id"] for i in sim}
    # persisted exactly as add-items does: a fresh Recommender sees both, with the same vectors
    rec = Recommender.load(run_dir, model="single")
    assert rec.index.position("n1") is not None and rec.index.position("n2") is not None
    # a similarity is the correlation over users of the two items' predicted scores
    for it in sim[:3]:
        v = rec.index.vectors([rec.index.position("n1"), rec.index.position(it["item_id"])])
        prof = (rec.user_emb.double() @ v.double().T).T.numpy()  # (2, users)
        assert abs(float(np.corrcoef(prof)[0, 1]) - it["similarity"]) < 1e-4, it
    saved = pd.read_csv(run_dir / "serve" / "added_items.csv", dtype=str, keep_default_na=False)
    assert {"n1", "n2"} <= set(saved["item_id"])


def test_concurrent_posts_never_lose_an_item(client, server, run_dir):
    n_threads, per_thread = 8, 3
    errors: list[str] = []

    def post(t: int) -> None:
        with httpx.Client(base_url=server.url, timeout=120) as c:
            for j in range(per_thread):
                r = c.post("/items", json={"item_id": f"c{t}_{j}", "title": f"Concurrent film {t} {j}",
                                           "genres": "Action"})
                if r.status_code != 201:
                    errors.append(r.text)

    threads = [threading.Thread(target=post, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    want = {f"c{t}_{j}" for t in range(n_threads) for j in range(per_thread)}
    for iid in want:
        assert client.get(f"/items/{iid}").status_code == 200
    saved = pd.read_csv(run_dir / "serve" / "added_items.csv", dtype=str, keep_default_na=False)
    assert want <= set(saved["item_id"]) and not saved["item_id"].duplicated().any()
    state = torch.load(run_dir / "serve" / "added_embeddings.pt", weights_only=False)
    assert want <= set(state["item_ids"]) and len(state["item_ids"]) == len(saved) == state["emb"].shape[0]


def test_page_and_static_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "id=\"recommendations\"" in page.text and "/static/app.js" in page.text
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/style.css").status_code == 200
