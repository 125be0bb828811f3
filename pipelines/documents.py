"""feedback.enriched event -> Elasticsearch document (pure)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from pipelines.clock import parse_ts
from pipelines.taxonomy import theme_by_code
from pipelines.units import units

# Fields the closure loop owns on a document. A replayed enriched event must not
# reset them, so they are only written when the document is first created.
CLOSURE_FIELDS = ("closure_status", "closure_action_ids", "closed_at", "hours_to_closure")
# Weeks are the county's weeks: a Monday-morning comment in Helsinki is not last week's.
LOCAL_TZ = ZoneInfo("Europe/Helsinki")


def iso_week(timestamp: str) -> str:
    """``2026-W44`` for an ISO 8601 timestamp, in Helsinki time (Kibana/term facets by week)."""
    dt = parse_ts(timestamp)
    year, week, _ = dt.astimezone(LOCAL_TZ).isocalendar()
    return f"{year}-W{week:02d}"


def upgrade_document(doc: dict[str, Any]) -> dict[str, Any]:
    """Fill fields that later mapping versions derive, on a document copied by a reindex."""
    if "week" not in doc and doc.get("received_at"):
        doc = {**doc, "week": iso_week(doc["received_at"])}
    return doc


def to_document(event: dict[str, Any], indexed_at: datetime | None = None) -> dict[str, Any]:
    """The document body for one enriched event: flat facets for Kibana, no personal data."""
    themes = theme_by_code()
    codes = [t["code"] for t in event["themes"] if t["code"] in themes]
    unit = units().get(event["unit"])
    source = {k: v for k, v in (event.get("source") or {}).items()
              if k in ("survey_id", "question_id", "kiosk_id", "app_version", "import_file")}
    doc: dict[str, Any] = {
        "feedback_id": event["feedback_id"],
        "channel": event["channel"],
        "unit": event["unit"],
        "unit_name": unit.names["fi"] if unit else event["unit"],
        "service_area": event.get("service_area") or (unit.service_area if unit else None),
        "received_at": event["received_at"],
        "submitted_at": event.get("submitted_at"),
        "enriched_at": event["enriched_at"],
        "indexed_at": (indexed_at or datetime.now(timezone.utc)).isoformat(),
        "week": iso_week(event["received_at"]),
        "text": event["text"],
        "language": event["language"],
        "language_confidence": event.get("language_confidence"),
        "redaction_total": sum(event.get("redactions", {}).values()),
        "redaction_types": sorted(k for k, v in event.get("redactions", {}).items() if v),
        "rating": event.get("rating"),
        "rating_scale": event.get("rating_scale"),
        "respondent_ref": event.get("respondent_ref"),
        "follow_up_consent": bool(event.get("follow_up_consent")),
        "embedding_model": event["embedding_model"],
        "themes": [{"code": t["code"], "score": t["score"]} for t in event["themes"] if t["code"] in themes],
        "theme_codes": codes,
        "primary_theme": codes[0] if codes else None,
        "theme_labels_fi": [themes[c].labels["fi"] for c in codes],
        "theme_labels_sv": [themes[c].labels["sv"] for c in codes],
        "theme_labels_en": [themes[c].labels["en"] for c in codes],
        "sentiment": event["sentiment"]["label"],
        "sentiment_score": event["sentiment"]["score"],
        "urgent": bool(event["urgency"]["flag"]),
        "urgency_score": event["urgency"].get("score"),
        "urgency_reasons": event["urgency"].get("reasons", []),
        "is_duplicate": bool(event.get("duplicate_of")),
        "duplicate_of": event.get("duplicate_of"),
        "text_fingerprint": event.get("text_fingerprint"),
        "model_version": event["model_version"],
        "taxonomy_version": event["taxonomy_version"],
        "source": source,
    }
    if event.get("embedding"):
        doc["embedding"] = event["embedding"]
    return doc


def new_document(doc: dict[str, Any]) -> dict[str, Any]:
    """The document as first created: open, answered by no action yet."""
    return {**doc, "closure_status": "open", "closure_action_ids": []}


def upsert_op(index: str, doc: dict[str, Any]) -> dict[str, Any]:
    """The one upsert of a document (the bulk helpers' form): create it open, or refresh its
    enrichment without touching the closure fields."""
    return {"_op_type": "update", "_index": index, "_id": doc["feedback_id"], "retry_on_conflict": 3,
            "doc": doc, "upsert": new_document(doc)}


def upsert_action(index: str, doc: dict[str, Any]) -> list[dict[str, Any]]:
    """:func:`upsert_op` as the two lines of a raw ``_bulk`` body."""
    op = upsert_op(index, doc)
    return [{"update": {"_index": op["_index"], "_id": op["_id"], "retry_on_conflict": op["retry_on_conflict"]}},
            {"doc": op["doc"], "upsert": op["upsert"]}]
