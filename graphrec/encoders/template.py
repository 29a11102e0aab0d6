"""Text templates: how item-table columns become the one text an item's encoder reads.

A template is a Python format string over columns of the prepared items table (e.g.
``"{title}. Genres: {genres}. {plot}"``). It is split into sentences; a sentence whose fields
are all empty for an item is dropped for that item. A leaf module (no encoder imports), shared
by the encoder config's validation, the text encoder and the genre objective.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

from graphrec.config_base import ConfigError

#: Default text template for ml1m-mm-like tables. Sentences whose fields are empty are dropped.
DEFAULT_TEMPLATE = "{title}. Genres: {genres}. {plot} Directed by {director}. Starring {actors}."

# A sentence boundary: whitespace after . ! ? ; or after a closing field brace.
_SPLIT = re.compile(r"(?<=[.!?;}])\s+")


@dataclass(frozen=True)
class Template:
    """A parsed text template: sentences, each with the fields it needs."""

    source: str
    segments: tuple[tuple[str, tuple[str, ...]], ...]

    @property
    def fields(self) -> list[str]:
        seen: list[str] = []
        for _, names in self.segments:
            seen += [n for n in names if n not in seen]
        return seen


def parse_template(template: str) -> Template:
    """Split ``template`` into sentences; each sentence is kept only if its fields are non-empty.

    Raises:
        ConfigError: malformed format string or positional/attribute fields.
    """
    segments = []
    for seg in _SPLIT.split(template.strip()):
        try:
            names = [f for _, f, _, _ in string.Formatter().parse(seg) if f is not None]
        except ValueError as exc:
            raise ConfigError(f"text.template: malformed format string {template!r}: {exc}") from None
        for n in names:
            if not n or not n.isidentifier():
                raise ConfigError(f"text.template: field {{{n}}} must name an item-table column")
        segments.append((seg, tuple(names)))
    return Template(template, tuple(segments))




def template_without_genres(template: str) -> str:
    """The text template with every sentence that mentions ``{genres}`` removed.

    >>> template_without_genres("{title}. Genres: {genres}. {plot}")
    '{title}. {plot}'
    """
    tpl = parse_template(template)
    kept = [seg for seg, names in tpl.segments if "genres" not in names]
    if not kept:
        raise ValueError(f"template_without_genres: nothing left of {template!r} once genres are removed")
    return " ".join(kept)


def template_mentions_genres(template: str | None) -> bool:
    """True when text rendered with ``template`` contains the genre labels (None = ``text`` column: unknown -> True)."""
    return True if template is None else "{genres" in template
