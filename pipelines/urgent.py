"""Urgent feedback reaching a person: the state of one urgent item, the emails about it and
the queries over the state store. Pure: the worker (services/workers/urgent.py) and the
console (services/apps/console.py) do the I/O.

An item is ``open`` once its unit's duty address has been emailed, ``escalated`` when
nobody acknowledged it within the configured time and its service area's address has been
emailed, and ``acknowledged`` when a lead acknowledged it in the console (from either).
The emails carry the redacted text only: never contact details or the respondent_ref.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pipelines.clock import parse_ts, utc_iso
from pipelines.units import Unit

OPEN, ESCALATED, ACKNOWLEDGED = "open", "escalated", "acknowledged"
UNACKNOWLEDGED = (OPEN, ESCALATED)
DUTY, ESCALATION = "duty", "escalation"
NO_TEXT = "(the text is no longer available: it was erased or is not indexed yet; see the console)"


@dataclass(frozen=True)
class UrgentEmail:
    """One email about one urgent item."""

    kind: str  # DUTY or ESCALATION
    to: str
    subject: str
    body: str
    mail_id: str  # stable per item and kind: a resend after a crash has the same Message-ID


def console_link(base_url: str, feedback_id: str) -> str:
    """Where a lead sees and acknowledges the item."""
    return f"{base_url.rstrip('/')}/console/urgent#item-{feedback_id}"


def new_state(event: dict[str, Any], sent_at: datetime) -> dict[str, Any]:
    """The state document of an urgent item whose duty email just went out (no text in it)."""
    urgency = event.get("urgency") or {}
    return {"feedback_id": event["feedback_id"], "unit": event["unit"], "service_area": event["service_area"],
            "language": event.get("language"), "reasons": list(urgency.get("reasons") or []),
            "urgency_score": urgency.get("score"), "received_at": event["received_at"], "status": OPEN,
            "duty_email_sent_at": utc_iso(sent_at)}


def _body(lead: str, unit: Unit, item: dict[str, Any], text: str | None, link: str) -> str:
    reasons = ", ".join(item.get("reasons") or []) or "(none given)"
    lines = [lead, "",
             f"Unit: {unit.names['en']} / {unit.names['fi']} ({unit.code})",
             f"Received: {item['received_at']}",
             f"Why it is urgent: {reasons}"]
    if item.get("urgency_score") is not None:
        lines.append(f"Urgency score: {item['urgency_score']}")
    lines += ["", "Text (personal details removed):", "", (text or NO_TEXT).strip() or NO_TEXT, "",
              f"Open and acknowledge it in the console: {link}", ""]
    return "\n".join(lines)


def duty_email(event: dict[str, Any], unit: Unit, base_url: str) -> UrgentEmail:
    """The email to the unit's duty address about a just-flagged urgent item (``event`` is
    the feedback.enriched record: its ``text`` is the redacted text)."""
    fid = event["feedback_id"]
    item = {**event, "reasons": (event.get("urgency") or {}).get("reasons"),
            "urgency_score": (event.get("urgency") or {}).get("score")}
    body = _body("Kiireellinen palaute / Brådskande respons / Urgent feedback: please read it and acknowledge "
                 "it in the console.", unit, item, event.get("text"), console_link(base_url, fid))
    return UrgentEmail(DUTY, unit.duty_email, f"Kiireellinen palaute / Urgent feedback: {unit.names['fi']}",
                       body, f"urgent-{fid}")


def escalation_email(state: dict[str, Any], unit: Unit, area_address: str, text: str | None, base_url: str,
                     escalate_after_s: float) -> UrgentEmail:
    """The email to the service area's address about an item nobody acknowledged in time."""
    fid = state["feedback_id"]
    minutes = round(escalate_after_s / 60, 1)
    lead = (f"ESCALATED: nobody acknowledged this urgent feedback within {minutes:g} minutes of the email to "
            f"{unit.duty_email} (sent {state['duty_email_sent_at']}).")
    return UrgentEmail(ESCALATION, area_address,
                       f"Kuittaamaton kiireellinen palaute / Unacknowledged urgent feedback: {unit.names['fi']}",
                       _body(lead, unit, state, text, console_link(base_url, fid)), f"urgent-escalation-{fid}")


def due_for_escalation_query(now: datetime, escalate_after_s: float) -> dict[str, Any]:
    """Open items whose duty email went out at least ``escalate_after_s`` before ``now``."""
    cutoff = utc_iso(now - timedelta(seconds=escalate_after_s))
    return {"bool": {"filter": [{"term": {"status": OPEN}}, {"range": {"duty_email_sent_at": {"lte": cutoff}}}]}}


def unacknowledged_query(units: list[str] | None) -> dict[str, Any]:
    """Items not yet acknowledged, of ``units`` only (None: every unit)."""
    clauses: list[dict[str, Any]] = [{"terms": {"status": list(UNACKNOWLEDGED)}}]
    if units is not None:
        clauses.append({"terms": {"unit": units}})
    return {"bool": {"filter": clauses}}


def acknowledgement(state: dict[str, Any], ack: dict[str, Any]) -> tuple[dict[str, Any], float] | None:
    """The fields an acknowledgement sets and the seconds from duty email to it; None when the
    item was acknowledged already (a repeat or a replay changes nothing)."""
    if state.get("status") == ACKNOWLEDGED:
        return None
    waited = (parse_ts(ack["acknowledged_at"]) - parse_ts(state["duty_email_sent_at"])).total_seconds()
    return ({"status": ACKNOWLEDGED, "acknowledged_at": ack["acknowledged_at"],
             "acknowledged_by": ack["acknowledged_by"]}, max(0.0, waited))
