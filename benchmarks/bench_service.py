"""Load benchmark of the HTTP service: requests per second and p50/p99 latency at 1, 8 and 32 clients.

Starts ``graphrec serve`` on a trained run in a subprocess bound to 127.0.0.1 (loopback only),
then, per concurrency level, runs that many client threads (one keep-alive httpx client each)
sending ``GET /users/{random user}/recommendations?k=10`` until ``--requests`` answers or
``--seconds`` have passed, whichever comes first. Writes benchmarks/results/service.json and
prints a table. The clients share the machine (and, in this process, one GIL) with the server,
so the numbers are a floor for a dedicated server.

    python3 benchmarks/bench_service.py --run runs/ml1m-mm-notebook [--levels 1 8 32] [--requests 400]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

HOST = "127.0.0.1"  # loopback only


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_server(run: str, port: int, model: str, threads: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "graphrec.service", "--run", run, "--host", HOST, "--port", str(port),
           "--model", model, "--log-level", "warning"] + (["--threads", str(threads)] if threads else [])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_ready(proc: subprocess.Popen, url: str, timeout: float) -> dict:
    import httpx

    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}): {proc.stderr.read()[-2000:]}")
        try:
            return httpx.get(url + "/health", timeout=2).json()
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"server not ready after {timeout:.0f}s")


def run_level(url: str, users: list[str], clients: int, max_requests: int, max_seconds: float, k: int,
              seed: int) -> dict:
    import httpx

    lat: list[float] = []
    errors = [0]
    lock = threading.Lock()
    left = [max_requests]
    deadline = time.perf_counter() + max_seconds

    def worker(w: int) -> None:
        rng = random.Random(seed * 1000 + w)
        with httpx.Client(base_url=url, timeout=60) as c:
            c.get(f"/users/{users[0]}/recommendations", params={"k": k})  # connect + warm up, not timed
            while time.perf_counter() < deadline:
                with lock:
                    if left[0] <= 0:
                        return
                    left[0] -= 1
                u = users[rng.randrange(len(users))]
                t = time.perf_counter()
                r = c.get(f"/users/{u}/recommendations", params={"k": k})
                dt = (time.perf_counter() - t) * 1000
                with lock:
                    lat.append(dt)
                    errors[0] += r.status_code != 200

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(clients)]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    a = np.array(lat)
    return {"clients": clients, "requests": len(lat), "errors": errors[0], "seconds": round(wall, 3),
            "requests_per_s": round(len(lat) / wall, 1), "p50_ms": round(float(np.percentile(a, 50)), 2),
            "p99_ms": round(float(np.percentile(a, 99)), 2), "mean_ms": round(float(a.mean()), 2)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", default="runs/ml1m-mm-notebook", help="trained run directory (default: %(default)s)")
    p.add_argument("--levels", type=int, nargs="+", default=[1, 8, 32], help="concurrent clients per level")
    p.add_argument("--requests", type=int, default=400, help="answers per level (bound)")
    p.add_argument("--seconds", type=float, default=30.0, help="time per level (bound)")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--model", default="auto", choices=["auto", "single", "ensemble"])
    p.add_argument("--server-threads", type=int, default=0, help="torch threads in the server (0 = its default)")
    p.add_argument("--out", default="benchmarks/results/service.json")
    a = p.parse_args(argv)
    import httpx

    if not (Path(a.run) / "config.yaml").exists():
        print(f"no trained run at {a.run}; make one with: graphrec run --config configs/notebook.yaml", file=sys.stderr)
        return 2
    port = _free_port()
    url = f"http://{HOST}:{port}"
    proc = start_server(a.run, port, a.model, a.server_threads)
    try:
        health = wait_ready(proc, url, timeout=300)
        info = httpx.get(url + "/model", timeout=30).json()
        users = [u["user_id"] for u in httpx.get(url + "/users", params={"limit": 100_000}, timeout=30).json()["users"]]
        rows = [run_level(url, users, c, a.requests, a.seconds, a.k, seed=c) for c in a.levels]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    out = {"run": a.run, "endpoint": f"GET /users/{{id}}/recommendations?k={a.k}", "model": info["model"],
           "users": health["users"], "items": health["items"], "dim": info["dim"], "levels": rows,
           "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
           "command": "python3 benchmarks/bench_service.py " + " ".join(sys.argv[1:] if argv is None else argv)}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"{out['endpoint']} on {a.run} ({info['model']}, {health['users']:,} users, {health['items']:,} items)")
    print("| clients | requests | req/s | p50 ms | p99 ms | errors |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['clients']} | {r['requests']} | {r['requests_per_s']} | {r['p50_ms']} | {r['p99_ms']} | {r['errors']} |")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
