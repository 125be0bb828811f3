"""Timestamps as every event and document carries them: ISO 8601 in UTC with a ``Z``."""
from __future__ import annotations

from datetime import datetime, timezone


def utc_iso(dt: datetime) -> str:
    """``2026-11-02T10:00:00Z`` for ``dt``; a naive datetime is taken to be UTC."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def utc_now() -> str:
    """The current time as :func:`utc_iso` writes it."""
    # Already in UTC, so no astimezone (ingest stamps every item: the call showed in its profile).
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def parse_ts(value: str) -> datetime:
    """An ISO 8601 timestamp (``Z`` or an offset) as an aware datetime; naive means UTC."""
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
