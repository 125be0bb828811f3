"""Contracts: JSON Schemas of every event, the Elasticsearch index template, the
theme taxonomy and the unit registry. Files here are the single source; code loads
them through these helpers."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).resolve().parent
EVENT_VERSIONS: dict[str, int] = {
    "feedback.received": 1,
    "feedback.enriched": 1,
    "feedback.dlq": 2,
    "feedback.trend_alerts": 1,
    "feedback.urgent_acks": 1,
    "respondent.contacts": 1,
    "closure.actions": 1,
    "closure.notifications": 1,
    "closure.deliveries": 1,
    "closure.notification_log": 1,
    "gdpr.erasure": 1,
    "insights.emerging": 1,
}


@lru_cache(maxsize=None)
def load_json(relative: str) -> Any:
    """Load a JSON file under schemas/ by relative path."""
    return json.loads((SCHEMA_DIR / relative).read_text(encoding="utf-8"))


def event_schema(name: str, version: int | None = None) -> dict[str, Any]:
    """The JSON Schema of an event type (current version unless given)."""
    version = version or EVENT_VERSIONS[name]
    return load_json(f"events/{name}.v{version}.json")
