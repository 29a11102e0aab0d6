"""HTTP recommendation service and page over a trained run (``graphrec serve --run RUN_DIR``).

Needs the ``serve`` extra (FastAPI, uvicorn). :class:`Catalog` holds the logic without HTTP;
:func:`create_app` maps it onto endpoints; :class:`BackgroundServer` runs it from a thread.
"""

from graphrec.service.catalog import Catalog, ServiceError

__all__ = ["BackgroundServer", "Catalog", "ServiceError", "create_app"]


def __getattr__(name):  # FastAPI/uvicorn are imported only when the app or server is asked for
    if name == "create_app":
        from graphrec.service.app import create_app

        return create_app
    if name == "BackgroundServer":
        from graphrec.service.server import BackgroundServer

        return BackgroundServer
    raise AttributeError(name)
