"""``graphrec serve --run RUN_DIR [--host 127.0.0.1] [--port 8000]`` (also ``python -m graphrec.service``)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from graphrec.config import ConfigError
    from graphrec.data.report import DataError

    p = argparse.ArgumentParser(prog="graphrec serve", description="serve a trained run over HTTP: recommendations, "
                                "similar items, adding items, and a page at / (needs the serve extra)")
    p.add_argument("--run", "-r", required=True, help="run directory written by `graphrec run` (e.g. runs/ml1m-mm)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s, this machine only)")
    p.add_argument("--port", "-p", type=int, default=8000, help="port (default: %(default)s)")
    p.add_argument("--model", choices=["auto", "single", "ensemble"], default="auto",
                   help="auto (default): the seed ensemble when current, else model/; as `graphrec recommend --model`")
    p.add_argument("--backend", choices=["exact", "faiss"], default="exact", help="item index (default: exact)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = leave torch's setting)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    a = p.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        import torch

        from graphrec.service.app import create_app
        from graphrec.service.server import serve_forever

        if a.threads:
            torch.set_num_threads(a.threads)
        app = create_app(a.run, model=a.model, backend=a.backend, log=lambda m: print(m, file=sys.stderr))
    except (ConfigError, DataError, ImportError) as exc:  # ImportError: the serve extra is not installed
        print(f"graphrec serve: error: {exc}", file=sys.stderr)
        return 2
    cat = app.state.catalog
    print(f"serving {a.run} ({cat.model_kind}, {len(cat.rec.user_pos):,} users, {len(cat.rec.index):,} items) "
          f"on http://{a.host}:{a.port}/  (page: /, API docs: /docs)", file=sys.stderr)
    try:
        serve_forever(app, a.host, a.port, a.log_level)
    except KeyboardInterrupt:  # pragma: no cover
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
