"""Where tensors live: the one ``device`` option and small helpers to move things there.

The run config has one top-level key, ``device`` (``auto`` | ``cpu`` | ``cuda`` | ``cuda:N``),
read by every stage that computes: the encoders, GraphRec training (and warm refinement),
evaluation and serving. ``auto`` takes the first GPU when torch sees one and the CPU otherwise,
so on a CPU-only machine every default run is exactly the CPU run. :func:`check_device_spec`
validates the *spelling* when the config is loaded (a typo fails at once, naming the key);
:func:`resolve_device` checks the *machine* when a stage starts (``cuda:3`` on a one-GPU box
is an error naming the key and the number of GPUs).

What stays on the CPU by design: data loading, the evaluation index (exclusions, positives),
negative sampling and batch order (a CPU generator, so the sampled batches are the same on
every device), the serving index, and the baselines (they are small; their scorers run on CPU).

This module imports only torch: every layer may use it.
"""

from __future__ import annotations

import re
from typing import Any

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N")
_SPEC = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def check_device_spec(spec: str, key: str = "device") -> str:
    """Validate the spelling of a device option; returns it normalised (lower case, stripped).

    Raises:
        ValueError: naming ``key`` when ``spec`` is not ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    """
    s = str(spec).strip().lower()
    if not _SPEC.match(s):
        raise ValueError(f"{key}: {spec!r} is not a device; expected one of {', '.join(DEVICE_CHOICES)} "
                         f"(e.g. cuda:0)")
    return s


def resolve_device(spec: str | torch.device | None = "auto", key: str = "device") -> torch.device:
    """The :class:`torch.device` a device option names on this machine.

    ``auto``: ``cuda:0`` when ``torch.cuda.is_available()``, else ``cpu``. ``cuda`` / ``cuda:N``
    must exist here. ``None`` means ``cpu`` (the library default of functions that take a
    device), and a :class:`torch.device` is returned as given.

    Raises:
        ValueError: naming ``key``: a misspelt option, CUDA asked for where torch has none, or a
            GPU index at or beyond ``torch.cuda.device_count()``.
    """
    if spec is None:
        return torch.device("cpu")
    if isinstance(spec, torch.device):
        return spec
    s = check_device_spec(spec, key)
    if s == "cpu":
        return torch.device("cpu")
    has_cuda = torch.cuda.is_available()
    if s == "auto":
        return torch.device("cuda", 0) if has_cuda else torch.device("cpu")
    if not has_cuda:
        raise ValueError(f"{key}: {spec!r} asks for a GPU but torch sees none (torch {torch.__version__}, "
                         f"CUDA build: {torch.version.cuda or 'no'}); use {key}: auto or cpu")
    index = int(s.split(":")[1]) if ":" in s else 0
    n = torch.cuda.device_count()
    if index >= n:
        raise ValueError(f"{key}: {spec!r} names GPU {index} but this machine has {n} "
                         f"(valid: {', '.join(f'cuda:{i}' for i in range(n))})")
    return torch.device("cuda", index)


def to_device(obj: Any, device: torch.device | str | None, non_blocking: bool = False) -> Any:
    """``obj`` with every tensor in it moved to ``device`` (tuples, lists and dicts recursively).

    ``device=None`` returns ``obj`` unchanged; a tensor already there is returned as is.
    """
    if device is None:
        return obj
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=non_blocking)
    if isinstance(obj, tuple):
        return tuple(to_device(v, device, non_blocking) for v in obj)
    if isinstance(obj, list):
        return [to_device(v, device, non_blocking) for v in obj]
    if isinstance(obj, dict):
        return {k: to_device(v, device, non_blocking) for k, v in obj.items()}
    return obj


def _is_tensor_tree(v: Any) -> bool:
    if isinstance(v, torch.Tensor):
        return True
    if isinstance(v, (tuple, list)) and v:
        return all(x is None or _is_tensor_tree(x) for x in v) and any(x is not None for x in v)
    if isinstance(v, dict) and v:
        return all(_is_tensor_tree(x) for x in v.values())
    return False


_TORCH_SLOTS = frozenset({"_parameters", "_buffers", "_modules"})


def stray_tensors(module: torch.nn.Module) -> list[str]:
    """Names of tensors a module tree holds as *plain attributes* (not parameters or buffers).

    ``module.to(device)`` does not move those (STYLE.md habit 16); an empty list means
    ``.to()`` moves everything the module holds.
    """
    out = []
    for prefix, m in module.named_modules():
        for name, v in vars(m).items():
            if name in _TORCH_SLOTS:
                continue  # torch's own bookkeeping: parameters, buffers, submodules
            if _is_tensor_tree(v):
                out.append(f"{prefix}.{name}" if prefix else name)
    return out


def module_to(module: torch.nn.Module, device: torch.device | str | None) -> torch.nn.Module:
    """``module.to(device)``, plus the tensors it holds as plain attributes (see :func:`stray_tensors`).

    A bridge for modules that keep tensors outside parameters/buffers (e.g. a task's genre targets
    or history CSR, a model's eval cache): they move too, so nothing stays behind on the CPU.
    ``device=None`` does nothing. Returns ``module``.
    """
    if device is None:
        return module
    module.to(device)
    for name in stray_tensors(module):
        *path, attr = name.split(".")
        owner = module
        for p in path:
            owner = getattr(owner, p)
        setattr(owner, attr, to_device(getattr(owner, attr), device))
    return module


def move_scorer(scorer: Any, device: torch.device | str | None) -> Any:
    """Move a scorer to ``device`` when it can move: a module (with its plain tensors), or an
    ensemble's ``members``; anything else (e.g. a baseline's CPU scorer) is returned as is."""
    if device is None:
        return scorer
    if isinstance(scorer, torch.nn.Module):
        return module_to(scorer, device)
    members = getattr(scorer, "members", None)
    if isinstance(members, (list, tuple)) and members and all(isinstance(m, torch.nn.Module) for m in members):
        for m in members:
            module_to(m, device)
    return scorer


def module_device(module: torch.nn.Module) -> torch.device:
    """Device of a module's first parameter (or buffer); CPU for a module holding no tensor."""
    for t in module.parameters():
        return t.device
    for t in module.buffers():
        if t is not None:
            return t.device
    return torch.device("cpu")


def scorer_device(scorer: Any) -> torch.device:
    """Where a scorer computes: its ``device`` attribute, a module's (or ensemble's first member's)
    parameters, else CPU. Evaluation sends each user batch there."""
    dev = getattr(scorer, "device", None)
    if isinstance(dev, (torch.device, str)):
        return torch.device(dev)
    if isinstance(scorer, torch.nn.Module):
        return module_device(scorer)
    members = getattr(scorer, "members", None)
    if isinstance(members, (list, tuple)) and members and isinstance(members[0], torch.nn.Module):
        return module_device(members[0])
    return torch.device("cpu")
