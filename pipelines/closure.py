"""Closure matching: which indexed feedback an action answers, and who hears back."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from pipelines.clock import parse_ts

NOTIFICATION_NAMESPACE = uuid.UUID("0c7f6a53-2d4b-4a0e-9a57-6f4f2b8f1d90")


def given_in_period(period: dict[str, str]) -> dict[str, Any]:
    """Feedback the resident gave within ``period``: its ``submitted_at`` when the channel
    supplied one, else its ``received_at``.

    The time of giving, not of arrival: a survey export imported in December still
    answers an October action.
    """
    bounds = {"gte": period["from"], "lte": period["to"]}
    return {"bool": {"minimum_should_match": 1, "should": [
        {"range": {"submitted_at": bounds}},
        {"bool": {"must_not": [{"exists": {"field": "submitted_at"}}],
                  "filter": [{"range": {"received_at": bounds}}]}},
    ]}}


def matching_query(action: dict[str, Any]) -> dict[str, Any]:
    """Elasticsearch query for the feedback an action answers: unit, any theme, period."""
    return {"bool": {"filter": [
        {"term": {"unit": action["unit"]}},
        {"terms": {"theme_codes": list(action["themes"])}},
        given_in_period(action["period"]),
    ]}}


def notification_id(action_id: str, respondent_ref: str) -> str:
    """One id per action and respondent: the notifier's idempotency key."""
    return str(uuid.uuid5(NOTIFICATION_NAMESPACE, f"{action_id}:{respondent_ref}"))


@dataclass(frozen=True)
class Recipient:
    respondent_ref: str
    language: str
    feedback_ids: tuple[str, ...]


def recipients(docs: list[dict[str, Any]]) -> list[Recipient]:
    """Group matching documents by consenting respondent: one message per person.

    The language is that of the respondent's most recent feedback; the notifier
    prefers the language the respondent chose in their contact record.
    """
    by_ref: dict[str, list[dict[str, Any]]] = {}
    for d in docs:
        ref = d.get("respondent_ref")
        if ref and d.get("follow_up_consent"):
            by_ref.setdefault(ref, []).append(d)
    out = []
    for ref, items in sorted(by_ref.items()):
        items.sort(key=lambda d: d["received_at"])
        lang = items[-1].get("language") or "fi"
        out.append(Recipient(ref, lang if lang in ("fi", "sv", "en") else "fi",
                             tuple(d["feedback_id"] for d in items)))
    return out


def closure_update(doc: dict[str, Any], action: dict[str, Any]) -> dict[str, Any] | None:
    """The partial document marking ``doc`` closed by ``action``; None if already marked."""
    ids = list(doc.get("closure_action_ids") or [])
    if action["action_id"] in ids:
        return None
    published = parse_ts(action["published_at"])
    received = parse_ts(doc["received_at"])
    update: dict[str, Any] = {"closure_status": "closed", "closure_action_ids": ids + [action["action_id"]]}
    if not doc.get("closed_at"):
        update["closed_at"] = action["published_at"]
        update["hours_to_closure"] = round(max(0.0, (published - received).total_seconds() / 3600), 2)
    return update
