"""pxtextmining phase-1 comments (Trust A, B, C) as training examples.

The mapping of its subcategories and criticality onto the county themes and sentiment
lives in ``schemas/pxtextmining_phase1_map.json`` (with the reasons); this module only
applies it. One subcategory per comment: the mapped theme is a known positive and the
other themes are unknown for that row (``Example.theme_label == "single"``).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from pipelines.classify import REPO_ROOT

MAP_PATH = REPO_ROOT / "schemas" / "pxtextmining_phase1_map.json"
PHASE1_CSV = Path("pxtextmining-phase1") / "text_data.csv"


def load_phase1_map(path: Path = MAP_PATH) -> dict[str, Any]:
    """The phase-1 mapping file."""
    return json.loads(path.read_text(encoding="utf-8"))


def phase1_sentiment(value: str, mapping: dict[str, Any]) -> str | None:
    """Criticality (-5 .. 5) to a sentiment by the mapping's bands; None = unlabelled
    (0, empty, or a stray value such as ``-o`` or ``NA``)."""
    try:
        n = int(value.strip())
    except ValueError:
        return None
    if n in mapping["sentiment"]["unlabelled"]:
        return None
    for label, (low, high) in mapping["sentiment"]["bands"].items():
        if low <= n <= high:
            return label
    return None


def phase1_theme(code: str, sentiment: str | None, mapping: dict[str, Any]) -> str | None:
    """The county theme of a subcategory code (None = no theme label for this row).

    A theme given per sentiment (e.g. "Care received": praise is overall gratitude,
    criticism is care quality) applies only to rows with that sentiment.
    """
    entry = mapping["subcategories"].get(code.strip())
    if entry is None:
        raise KeyError(f"phase-1 subcategory code {code!r} is not in {MAP_PATH.name}")
    theme = entry["theme"]
    if isinstance(theme, dict):
        return theme.get(sentiment or "unlabelled")
    return theme


def phase1_rows(csv_path: Path) -> list[dict[str, str]]:
    """The CSV rows that have a comment, in file order."""
    with csv_path.open(encoding="utf-8", newline="") as fh:
        return [r for r in csv.DictReader(fh) if (r.get("feedback") or "").strip()]


def unique_texts(rows: list[dict[str, str]]) -> list[str]:
    """Distinct comments in order of first appearance (what gets embedded and cached)."""
    return list(dict.fromkeys(r["feedback"].strip() for r in rows))
