"""The recommendation service: a FastAPI app over a trained run (``pip install -e '.[serve]'``).

Endpoints (JSON; errors are ``{"error": message, "field": name}`` with a 4xx status):

| method and path | answer |
| --- | --- |
| ``GET /health`` | ``{"status": "ok", "users", "items"}`` |
| ``GET /model`` | run, model kind, modalities, encoder fingerprints, counts, the fields a new item may carry |
| ``GET /users?limit=&offset=`` | user ids with their number of interactions |
| ``GET /users/{id}/history?limit=`` | the user's known items, most recent first when there are timestamps |
| ``GET /users/{id}/recommendations?k=&include_seen=`` | top-k with rank, title, score, ``cold``, ``image_url`` |
| ``GET /items/{id}`` / ``GET /items/{id}/image`` | one item; its poster (from the prepared ``image_path``) |
| ``GET /items/{id}/similar?k=`` | items the same users are predicted to like (:mod:`graphrec.service.catalog`) |
| ``GET /items/{id}/audience?k=&limit=`` | users whose top-k now contains the item |
| ``POST /items`` | new items as JSON (``{"items": [...]}``, a list or one object) or CSV (``text/csv``): embedded from content, recommendable at once, persisted as ``graphrec add-items`` does |
| ``GET /`` | the page (``graphrec/service/page/``) |

Unknown user or item: 404; a bad ``k``: 422 naming ``k``; a bad new item: 400 naming the
item (``items[i]`` or CSV line) and the field.
"""

import io
from pathlib import Path
from typing import Any

from graphrec.service.catalog import Catalog, ServiceError

PAGE_DIR = Path(__file__).resolve().parent / "page"
MAX_K = 1000


def create_app(run_dir: str | Path | None = None, *, catalog: Catalog | None = None, model: str = "auto",
               backend: str = "exact", log=None):
    """Build the FastAPI app for ``run_dir`` (or an already loaded ``catalog``).

    Args:
        run_dir: a run directory written by ``graphrec run`` / ``graphrec train``.
        catalog: a loaded :class:`~graphrec.service.catalog.Catalog` (instead of ``run_dir``).
        model: ``auto`` | ``single`` | ``ensemble`` (as ``graphrec recommend --model``).
        backend: item index backend, ``exact`` or ``faiss``.
        log: callable for load messages.
    """
    fastapi = _fastapi()  # before loading anything: a missing extra fails first
    if catalog is None:
        if run_dir is None:
            raise ValueError("create_app: give run_dir or catalog")
        catalog = Catalog.load(run_dir, model=model, backend=backend, log=log)
    app = fastapi.FastAPI(title="graphrec", description="Cold-start recommendation service over a trained graphrec run.",
                          version="1")
    app.state.catalog = catalog
    _add_error_handlers(app)
    _add_routes(app, catalog)
    return app


def _fastapi():
    """The ``fastapi`` module, or an ImportError naming the extra to install."""
    try:
        import fastapi
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise ImportError("graphrec serve needs FastAPI and uvicorn: pip install -e '.[serve]'") from exc
    return fastapi


def _add_error_handlers(app) -> None:
    """Every error answers JSON ``{"error", "field"}``: service errors, bad parameters, HTTP errors, crashes."""
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(ServiceError)
    async def _service_error(_: Request, exc: ServiceError):
        return JSONResponse(exc.to_json(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(x) for x in first.get("loc", []) if x not in ("query", "path", "body")]
        return JSONResponse({"error": f"{'.'.join(loc) or 'request'}: {first.get('msg', 'invalid')}",
                             "field": loc[-1] if loc else None}, status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception):  # still JSON, and the server keeps running
        return JSONResponse({"error": f"internal error: {type(exc).__name__}: {exc}", "field": None}, status_code=500)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException):
        return JSONResponse({"error": str(exc.detail), "field": None}, status_code=exc.status_code)


def _add_routes(app, cat: Catalog) -> None:
    """The endpoints of the module docstring, each a thin call into ``cat``, and the page."""
    from fastapi import Query, Request
    from fastapi.responses import FileResponse
    from fastapi.staticfiles import StaticFiles
    from starlette.concurrency import run_in_threadpool

    k_query = Query(10, ge=1, le=MAX_K, description=f"number of items, 1..{MAX_K}")

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "users": len(cat.rec.user_pos), "items": len(cat.rec.index)}

    @app.get("/model")
    def model_info() -> dict[str, Any]:
        return cat.info()

    @app.get("/users")
    def users(limit: int = Query(100, ge=1, le=100_000), offset: int = Query(0, ge=0)) -> dict[str, Any]:
        return cat.users(limit, offset)

    @app.get("/users/{user_id}/history")
    def history(user_id: str, limit: int = Query(50, ge=1, le=10_000)) -> dict[str, Any]:
        return cat.user_history(user_id, limit)

    @app.get("/users/{user_id}/recommendations")
    def recommendations(user_id: str, k: int = k_query, include_seen: bool = False) -> dict[str, Any]:
        return cat.recommendations(user_id, k, exclude_seen=not include_seen)

    @app.get("/items/{item_id}")
    def item(item_id: str) -> dict[str, Any]:
        return cat.item(item_id)

    @app.get("/items/{item_id}/image")
    def image(item_id: str):
        return FileResponse(cat.image_path(item_id))

    @app.get("/items/{item_id}/similar")
    def similar(item_id: str, k: int = k_query) -> dict[str, Any]:
        return cat.similar(item_id, k)

    @app.get("/items/{item_id}/audience")
    def audience(item_id: str, k: int = k_query, limit: int = Query(50, ge=1, le=100_000)) -> dict[str, Any]:
        return cat.audience(item_id, k, limit)

    @app.post("/items", status_code=201, openapi_extra={"requestBody": {"content": {
        "application/json": {"schema": {"type": "object"}}, "text/csv": {"schema": {"type": "string"}}}}})
    async def add_items(request: Request) -> dict[str, Any]:
        rows, source = await _parse_items(request)
        return await run_in_threadpool(cat.add, rows, source)

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(PAGE_DIR / "index.html")

    app.mount("/static", StaticFiles(directory=PAGE_DIR), name="static")


async def _parse_items(request) -> tuple[Any, str]:
    """JSON (``{"items": [...]}``, a list, or one object) or CSV body -> (rows, source)."""
    import json

    import pandas as pd

    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if not body.strip():
        raise ServiceError(400, "empty request body: send items as JSON or CSV", "items")
    if ctype in ("text/csv", "application/csv", "text/plain"):
        try:
            df = pd.read_csv(io.BytesIO(body), dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
            raise ServiceError(400, f"body is not CSV: {exc}", "items") from None
        return df, "csv"
    if ctype not in ("application/json", ""):
        raise ServiceError(415, f"content type {ctype!r}: send application/json or text/csv", "content-type")
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ServiceError(400, f"body is not JSON: {exc}", "items") from None
    if isinstance(data, dict) and "items" in data:
        data = data["items"]
    elif isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise ServiceError(400, "expected {\"items\": [...]}, a list of items or one item object", "items")
    return data, "json"
