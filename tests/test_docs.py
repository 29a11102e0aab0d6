"""docs/CONFIG.md is the generated reference of every option; it must match the code."""

from pathlib import Path

from graphrec.config import Config
from graphrec.config_base import reference_markdown

ROOT = Path(__file__).resolve().parents[1]


def test_config_reference_is_up_to_date():
    text = (ROOT / "docs" / "CONFIG.md").read_text()
    assert reference_markdown(Config) in text, "regenerate: graphrec config --reference > docs/CONFIG.md (see its header)"


def test_every_option_has_help():
    import dataclasses

    from graphrec.config_base import StrictConfig

    def walk(cls, prefix=""):
        for f in dataclasses.fields(cls):
            t = f.type if isinstance(f.type, type) else None
            default = getattr(cls(), f.name)
            if isinstance(default, StrictConfig):
                yield from walk(type(default), f"{prefix}{f.name}.")
            else:
                yield f"{prefix}{f.name}", f.metadata.get("help", "")

    missing = [k for k, h in walk(Config) if not h]
    assert not missing, f"options without help text: {missing}"
