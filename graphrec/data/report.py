"""Prep report: every kept and skipped row counted, with examples; nothing dropped silently."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


class DataError(ValueError):
    """Bad input that cannot be skipped; the message names the file, row and field."""

    def __init__(self, file: str | Path, message: str, row: int | None = None, field: str | None = None):
        where = str(file)
        if row is not None:
            where += f", row {row}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")
        self.file, self.row, self.field, self.message = str(file), row, field, message


MAX_EXAMPLES = 10


@dataclass
class PrepReport:
    """Counts of what preparation kept, skipped and changed.

    ``skipped[name]`` counts rows that were not kept (with up to 10 examples naming file and row);
    ``flagged[name]`` counts rows kept with a change or a missing part (e.g. no image).
    """

    source: str = ""
    kept: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    flagged: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def skip(self, name: str, count: int, examples: list[str] = ()) -> None:
        self._add(self.skipped, name, count, examples)

    def flag(self, name: str, count: int, examples: list[str] = ()) -> None:
        self._add(self.flagged, name, count, examples)

    def _add(self, table: dict[str, int], name: str, count: int, examples) -> None:
        table[name] = table.get(name, 0) + int(count)
        if examples:
            ex = self.examples.setdefault(name, [])
            ex.extend(list(examples)[: MAX_EXAMPLES - len(ex)])

    def to_dict(self) -> dict:
        return {"source": self.source, "kept": self.kept, "skipped": self.skipped,
                "flagged": self.flagged, "examples": self.examples}

    def write(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    def summary(self) -> str:
        lines = [f"prepared {self.source}"]
        lines.append("  kept:    " + ", ".join(f"{k}={v:,}" for k, v in self.kept.items()))
        if self.skipped:
            lines.append("  skipped: " + ", ".join(f"{k}={v:,}" for k, v in self.skipped.items()))
        else:
            lines.append("  skipped: nothing")
        if self.flagged:
            lines.append("  flagged: " + ", ".join(f"{k}={v:,}" for k, v in self.flagged.items()))
        return "\n".join(lines)
