"""What ``graphrec init`` proposes: :class:`Decision` (one key, its value and why) and :class:`Proposal`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphrec.init_config.inspection import TableInfo


@dataclass
class Decision:
    """One proposed setting: dotted config key, value, and why (``None`` value: key left out)."""

    key: str
    value: Any
    why: str
    active: bool = True  # False: written commented out (a key this graphrec does not have yet)


@dataclass
class Proposal:
    """A proposed config: the decisions in order, notes that are not settings, the inspected files."""

    decisions: list[Decision]
    notes: list[str]
    tables: dict[str, TableInfo]

    def config_dict(self) -> dict[str, Any]:
        """Nested mapping of the active decisions (what the YAML loads as)."""
        out: dict[str, Any] = {}
        for d in self.decisions:
            if not d.active:
                continue
            node = out
            parts = d.key.split(".")
            for p in parts[:-1]:
                node = node.setdefault(p, {})
            node[parts[-1]] = d.value
        return out

    def get(self, key: str, default: Any = None) -> Any:
        return next((d.value for d in self.decisions if d.key == key and d.active), default)

    def summary(self) -> str:
        lines = ["graphrec init decided:"]
        for d in self.decisions:
            flag = "" if d.active else " (commented out)"
            lines.append(f"  {d.key} = {yaml_flow(d.value)}{flag}\n      because {d.why}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def yaml_flow(value: Any) -> str:
    import yaml

    return yaml.safe_dump(value, default_flow_style=True, width=10_000, allow_unicode=True).strip().removesuffix("\n...").removesuffix("...").strip()
