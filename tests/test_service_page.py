"""The service's page in headless Chromium (Debian's package, driven by Playwright).

Run on demand: ``python3 -m pytest -m browser tests/test_service_page.py`` (needs
``apt-get install chromium`` and ``pip install playwright``; never ``playwright install``).
Skipped when either is missing. The screenshot is kept in ``build/test-artifacts/``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser
pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("no chromium on PATH (apt-get install chromium)", allow_module_level=True)

import fakes  # noqa: E402,F401  (registers fake_text / fake_image)
from mlstyle import build_trained_run  # noqa: E402

from graphrec.service import BackgroundServer, create_app  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[1] / "build" / "test-artifacts"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    run, _ = build_trained_run(tmp_path_factory.mktemp("page"), images=True)
    with BackgroundServer(create_app(run, model="single")) as srv:
        yield srv


@pytest.fixture(scope="module")
def page(server):
    with sync_api.sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        browser = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True, args=FLAGS,
                                                       viewport={"width": 1280, "height": 900})
        pg = browser.new_page()
        pg.set_default_timeout(30_000)
        yield pg
        browser.close()


def _posters_loaded(pg, selector: str) -> list[bool]:
    return pg.eval_on_selector_all(selector, "els => els.map(e => e.complete && e.naturalWidth > 0)")


def test_page_shows_a_users_recommendations_with_posters_and_an_added_item(page, server, tmp_path):
    api = httpx.Client(base_url=server.url, timeout=60)
    user = api.get("/users", params={"limit": 5}).json()["users"][2]["user_id"]
    want = api.get(f"/users/{user}/recommendations", params={"k": 8}).json()["items"]

    page.goto(server.url + "/")
    page.wait_for_selector("body[data-ready='1']")
    assert "users" in page.inner_text("#model-info")
    page.fill("#user-input", user)
    page.fill("#k-input", "8")
    page.click("#show-user")
    page.wait_for_function("document.querySelectorAll('#recommendations .card').length === 8")
    page.wait_for_function("[...document.querySelectorAll('#recommendations img.poster')].every(i => i.complete)")
    cards = page.query_selector_all("#recommendations .card")
    assert [c.get_attribute("data-item-id") for c in cards] == [w["item_id"] for w in want]
    assert [c.query_selector(".title").inner_text() for c in cards] == [w["title"] for w in want]
    assert all(_posters_loaded(page, "#recommendations img.poster")) and len(_posters_loaded(page, "#recommendations img.poster")) == 8
    assert [bool(c.query_selector(".badge.cold")) for c in cards] == [w["cold"] for w in want]
    assert cards[0].query_selector(".meta").inner_text() == f"score {want[0]['score']:.3f}"
    assert page.query_selector_all("#history .card")

    # add a new item through the form, with a poster
    from PIL import Image

    poster = tmp_path / "poster.png"
    Image.new("RGB", (40, 60), (240, 180, 20)).save(poster)
    page.fill("#add-item_id", "page_new_1")
    page.fill("#add-title", "Laughs and Explosions: The Return")
    page.fill("#add-year", "2025")
    page.fill("#add-genres", "Comedy|Action")
    page.set_input_files("#add-poster", str(poster))
    page.click("#add-submit")
    page.wait_for_selector("#added-item .card[data-item-id='page_new_1']")
    page.wait_for_function("[...document.querySelectorAll('#added-item img.poster')].every(i => i.complete)")
    assert all(_posters_loaded(page, "#added-item img.poster"))
    assert page.query_selector("#added-item .badge.added") and page.query_selector("#added-item .badge.cold")
    aud = api.get("/items/page_new_1/audience", params={"k": 8, "limit": 40}).json()  # the k chosen above
    assert page.inner_text("#audience-summary").startswith(f"{aud['n_users']} of {aud['total_users']} users")
    shown = [b.get_attribute("data-user-id") for b in page.query_selector_all("#audience button")]
    assert shown == [u["user_id"] for u in aud["users"]]
    if shown:  # a user who now gets it: their recommendations show it
        page.click(f"#audience button[data-user-id='{shown[0]}']")
        page.wait_for_selector("#recommendations .card[data-item-id='page_new_1']")

    page.click("#recommendations .card >> nth=0")
    page.wait_for_selector("#similar .card")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "service_page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000

    # a bad item: the error names the field, nothing is added
    page.fill("#add-item_id", "page_new_1")
    page.click("#add-submit")
    page.wait_for_selector("#add-error")
    assert "already in the catalogue" in page.inner_text("#add-error") and "item_id" in page.inner_text("#add-error")
    assert page.query_selector_all("#added-item .card") == []
