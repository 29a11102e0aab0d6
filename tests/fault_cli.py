"""``graphrec`` in a subprocess with the fake encoders, optionally killed (SIGKILL) mid-training.

Usage: ``python tests/fault_cli.py <graphrec arguments>``. Environment:

* ``GRAPHREC_KILL_AFTER_EPOCH=N``: the process kills itself with SIGKILL right after GraphRec's
  training state ``last.pt`` of epoch ``N`` is written (as a power cut or ``kill -9`` would);
* ``GRAPHREC_KILL_WRITING_EPOCH=N``: it kills itself half-way through writing ``last.pt`` of
  epoch ``N`` (a truncated ``last.pt.tmp`` is left behind).

Killing from inside the training loop makes the fault land at the same point on every run, with
no timing involved.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fakes  # noqa: E402,F401  (registers fake_text / fake_image)


def _die() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _install_faults() -> None:
    after = int(os.environ.get("GRAPHREC_KILL_AFTER_EPOCH", "0"))
    writing = int(os.environ.get("GRAPHREC_KILL_WRITING_EPOCH", "0"))
    if not (after or writing):
        return
    import torch

    from graphrec.recipes import graphrec as recipe

    original = recipe._Checkpoints.epoch_end

    def epoch_end(self, state):
        if writing and state.epoch == writing:
            real_save = torch.save

            def half_save(obj, f, *a, **kw):  # write the file, keep half of it, die
                real_save(obj, f, *a, **kw)
                data = Path(f).read_bytes()
                Path(f).write_bytes(data[: len(data) // 2])
                _die()

            torch.save = half_save
        original(self, state)
        if after and state.epoch == after:
            _die()

    recipe._Checkpoints.epoch_end = epoch_end


if __name__ == "__main__":
    _install_faults()
    from graphrec.cli import main

    sys.exit(main(sys.argv[1:]))
