"""Strict, typed dataclass configs with YAML round trips.

Every config section in graphrec is a dataclass that subclasses :class:`StrictConfig`.
Loading from a mapping (or YAML) is strict: an unknown key is an error that names the key
with its dotted path, and values are checked against the declared field types. Each field
documents itself through ``field(metadata={"help": ...})``; :func:`reference_markdown`
renders those into the one reference page of options.

Precedence, used by the CLI: command-line overrides > config file > dataclass defaults.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T", bound="StrictConfig")


class ConfigError(ValueError):
    """A configuration value or key is invalid; the message names the key."""


def opt(default: Any, help: str, **kwargs: Any) -> Any:
    """A dataclass field with a documented default (``help`` is shown in --help and docs)."""
    if isinstance(default, (list, dict, set)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata={"help": help}, **kwargs)
    if dataclasses.is_dataclass(default) and isinstance(default, type):
        return dataclasses.field(default_factory=default, metadata={"help": help}, **kwargs)
    return dataclasses.field(default=default, metadata={"help": help}, **kwargs)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check/convert ``value`` to the annotated type ``tp``; raise ConfigError naming ``key``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{key}: {value!r} does not match {tp}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not one of {list(args)}")
        return value
    if isinstance(tp, type) and issubclass(tp, StrictConfig):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping for section {tp.__name__}, got {value!r}")
        return tp.from_dict(value, _prefix=f"{key}.")
    if origin in (list, tuple):
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        out = [_coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        vt = args[1] if len(args) == 2 else Any
        return {str(k): _coerce(v, vt, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    return value


@dataclasses.dataclass
class StrictConfig:
    """Base class for config sections: strict loading, validation hook, YAML round trip."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Override to check values; raise :class:`ConfigError` naming the field."""

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any] | None, _prefix: str = "") -> T:
        data = dict(data or {})
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(
                f"unknown config key {_prefix}{unknown[0]!s}"
                + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else "")
                + f"; valid keys in {cls.__name__}: {sorted(names)}"
            )
        kwargs = {k: _coerce(v, hints[k], f"{_prefix}{k}") for k, v in data.items()}
        try:
            return cls(**kwargs)
        except ConfigError as exc:
            if _prefix and not str(exc).startswith(_prefix):
                raise ConfigError(f"{_prefix}{exc}") from None
            raise

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, StrictConfig):
                v = v.to_dict()
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out

    def replace(self: T, **changes: Any) -> T:
        return self.from_dict({**self.to_dict(), **changes})

    def with_overrides(self: T, overrides: dict[str, Any]) -> T:
        """Apply dotted-key overrides (``{"train.lr": 0.01}``), strictly."""
        data = self.to_dict()
        for dotted, value in overrides.items():
            node = data
            parts = dotted.split(".")
            for p in parts[:-1]:
                if not isinstance(node.get(p), dict):
                    raise ConfigError(f"unknown config key {dotted} (no section {p!r})")
                node = node[p]
            if parts[-1] not in node:
                raise ConfigError(f"unknown config key {dotted}")
            node[parts[-1]] = value
        return type(self).from_dict(data)

    def save_yaml(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def load_yaml(cls: type[T], path: str | Path) -> T:
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"config file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        try:
            return cls.from_dict(data)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None


def field_type(cls: type[StrictConfig], dotted: str) -> Any:
    """The declared type of the dotted key ``dotted`` of ``cls`` (None for an unknown key)."""
    tp: Any = cls
    for part in dotted.split("."):
        if not (isinstance(tp, type) and issubclass(tp, StrictConfig)):
            return None
        hints = typing.get_type_hints(tp)
        if part not in hints:
            return None
        tp = hints[part]
    return tp


def accepts_str(tp: Any) -> bool:
    """True when a value of type ``tp`` may be a plain string (``str``, ``str | None``, a string Literal)."""
    if tp is str:
        return True
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return any(accepts_str(a) for a in args)
    if typing.get_origin(tp) is typing.Literal:
        return all(isinstance(a, str) for a in args)
    return False


def reference_markdown(cls: type[StrictConfig], prefix: str = "", level: int = 2) -> str:
    """Render every option of ``cls`` (recursively) as Markdown tables: key, type, default, help."""
    lines = [f"{'#' * level} `{prefix.rstrip('.') or 'top level'}` ({cls.__name__})", "", (cls.__doc__ or "").strip().split("\n\n")[0], ""]
    lines += ["| key | type | default | description |", "| --- | --- | --- | --- |"]
    hints = typing.get_type_hints(cls)
    sections = []
    inst = cls()
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if isinstance(tp, type) and issubclass(tp, StrictConfig):
            sections.append((f.name, tp))
            continue
        tname = getattr(tp, "__name__", str(tp)).replace("typing.", "").replace("|", "\\|")
        default = getattr(inst, f.name)
        lines.append(f"| `{prefix}{f.name}` | {tname} | `{default!r}` | {f.metadata.get('help', '')} |")
    out = "\n".join(lines) + "\n"
    for name, tp in sections:
        out += "\n" + reference_markdown(tp, f"{prefix}{name}.", level + 1)
    return out
