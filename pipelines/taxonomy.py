"""The theme taxonomy (schemas/taxonomy.json) as typed objects."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from schemas import load_json


@dataclass(frozen=True)
class Theme:
    code: str
    labels: dict[str, str]
    description: str
    pxtextmining_labels: tuple[str, ...]
    prototypes: dict[str, tuple[str, ...]]


@lru_cache(maxsize=1)
def taxonomy_version() -> str:
    return str(load_json("taxonomy.json")["version"])


@lru_cache(maxsize=1)
def themes() -> tuple[Theme, ...]:
    """All themes in taxonomy order."""
    return tuple(
        Theme(
            code=t["code"],
            labels={k: t[k] for k in ("fi", "sv", "en")},
            description=t["description"],
            pxtextmining_labels=tuple(t.get("pxtextmining_labels", ())),
            prototypes={lang: tuple(v) for lang, v in t.get("prototypes", {}).items()},
        )
        for t in load_json("taxonomy.json")["themes"]
    )


def theme_by_code() -> dict[str, Theme]:
    return {t.code: t for t in themes()}
