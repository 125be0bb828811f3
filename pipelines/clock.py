"""Timestamps as every event and document carries them: ISO 8601 in UTC with a ``Z``."""
from __future__ import annotations

from datetime import datetime, timezone


def utc_iso(dt: datetime) -> str:
    """``2026-11-02T10:00:00Z`` for ``dt``; a naive datetime is taken to be UTC."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    elif dt.tzinfo is not timezone.utc:  # already UTC (every utc_now): no astimezone, which ingest's profile showed
        dt = dt.astimezone(timezone.utc)
    return dt.isoformat().replace("+00:00", "Z")


def utc_now() -> str:
    """The current time as :func:`utc_iso` writes it."""
    return utc_iso(datetime.now(timezone.utc))


def parse_ts(value: str) -> datetime:
    """An ISO 8601 timestamp (``Z`` or an offset) as an aware datetime; naive means UTC."""
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
