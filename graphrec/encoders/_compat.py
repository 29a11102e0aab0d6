"""The one place that makes ``torchvision`` importable next to a CPU-only torch.

The only torchvision wheel pip pairs with CPU torch 2.13 is a CUDA build whose compiled ops
cannot load; importing it then fails with ``operator torchvision::nms does not exist`` and
takes ``transformers`` / ``sentence_transformers`` / ``timm`` / ``open_clip`` down with it
(see ``../shared/MODELS.md``). Every graphrec module that imports one of those calls
:func:`ensure_torchvision_importable` first.
"""

from __future__ import annotations

import logging
import sys

log = logging.getLogger(__name__)

_STATE: dict[str, object] = {"done": False, "shimmed": False, "lib": None}


def ensure_torchvision_importable() -> bool:
    """Import torchvision, registering its two missing op schemas only if the plain import fails.

    A no-op (apart from importing torchvision) where torchvision loads normally, e.g. on a
    machine with a matching build. Idempotent and cheap after the first call.

    Returns:
        True if the compatibility shim had to be applied, False otherwise (also when
        torchvision is not installed at all: callers that need it will fail on their own import).
    """
    if _STATE["done"]:
        return bool(_STATE["shimmed"])
    import torch

    try:
        import torchvision  # noqa: F401
    except ModuleNotFoundError:
        _STATE["done"] = True
        return False
    except RuntimeError as exc:
        if "torchvision::nms" not in str(exc):
            raise
        # Drop the half-imported package, register the schemas its meta registrations
        # expect, and import again.
        for mod in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[mod]
        lib = torch.library.Library("torchvision", "DEF")
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _STATE["lib"] = lib  # keep the registration alive for the life of the process
        import torchvision  # noqa: F401,F811

        _STATE["shimmed"] = True
        log.info("torchvision compiled ops unavailable; registered nms/qnms schemas (MODELS.md workaround)")
    _STATE["done"] = True
    return bool(_STATE["shimmed"])
