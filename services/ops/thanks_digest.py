"""`feedback insights thanks-digest`: the weekly email of thanks to each unit that opted in.

For each unit whose ``thanks_digest`` is enabled in schemas/units.json: count its thanks in
the week and the week before, pick quotes in its languages (pipelines/thanks.py), and send
the digest to its team address through the staff email path of the urgent worker
(services/adapters/delivery.send_staff_email).

Idempotent per unit and week. The record of a sent digest is a document in
``<alias>-digests`` with _id ``thanks-<unit>-<week>``, written after the SMTP server accepted
the email; a rerun skips every unit with a record. The email's Message-ID is the same id, so
if the job dies between sending and recording, the rerun's resend is the same message to the
mail store. Why Elasticsearch and not a compacted topic: the job reads the feedback from
Elasticsearch anyway, so it needs no Kafka user or ACLs at all, a record is read by id (no
replay of a topic to learn what was sent), and Kibana can list the digests sent.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from pipelines import thanks
from pipelines.units import Unit, units
from services import metrics
from services.adapters.delivery import send_staff_email
from services.adapters.stores import ensure_index
from services.logs import get_logger
from services.settings import Settings

log = get_logger("thanks-digest")
Sender = Callable[..., None]


@dataclass
class DigestReport:
    """What one run did, per unit code."""

    week: str
    sent: list[str] = field(default_factory=list)
    already_sent: list[str] = field(default_factory=list)
    no_thanks: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {"week": self.week, "sent": self.sent, "already_sent": self.already_sent,
                "no_thanks": self.no_thanks, "failed": self.failed}


def opted_in(all_units: dict[str, Unit]) -> list[Unit]:
    """Units whose thanks digest is enabled, by code."""
    return [u for _, u in sorted(all_units.items()) if u.thanks_digest and u.thanks_digest.enabled]


def _count(es: Any, alias: str, query: dict[str, Any]) -> int:
    return int(es.count(index=alias, query=query)["count"])


def compose_for(es: Any, settings: Settings, unit: Unit, week: str) -> thanks.DigestEmail | None:
    """The unit's digest for ``week`` from the index, or None when it had no thanks that week."""
    alias = settings.index_alias
    start, end = thanks.week_bounds(week)
    prev_start, prev_end = thanks.week_bounds(thanks.previous_week(week))
    current = _count(es, alias, thanks.period_query(unit.code, start, end))
    if current == 0:
        return None
    previous = _count(es, alias, thanks.period_query(unit.code, prev_start, prev_end))
    total = _count(es, alias, thanks.period_query(unit.code, start, end, thanks=False))
    hits = es.search(index=alias, size=thanks.QUOTE_POOL, query=thanks.period_query(unit.code, start, end),
                     source=thanks.QUOTE_FIELDS, sort=thanks.QUOTE_SORT)["hits"]["hits"]
    assert unit.thanks_digest is not None  # opted_in() chose the unit
    quotes = thanks.pick_quotes([h["_source"] for h in hits], unit.thanks_digest.languages)
    return thanks.compose_digest(unit, week, current, previous, total, quotes, settings.public_base_url)


def run_digests(settings: Settings, es: Any, week: str, now: datetime | None = None,
                send: Sender = send_staff_email) -> DigestReport:
    """Send ``week``'s digest to every opted-in unit that has none recorded yet."""
    week = thanks.parse_week(week)
    index = ensure_index(es, settings.index_alias, "digests")
    report = DigestReport(week)
    for unit in opted_in(units()):
        did = thanks.digest_id(unit.code, week)
        if es.exists(index=index, id=did):
            report.already_sent.append(unit.code)
            metrics.THANKS_DIGESTS.labels("already_sent").inc()
            continue
        mail = compose_for(es, settings, unit, week)
        if mail is None:
            report.no_thanks.append(unit.code)
            metrics.THANKS_DIGESTS.labels("no_thanks").inc()
            continue
        try:
            send(settings, mail.to, mail.subject, mail.body, mail.mail_id, {"X-Thanks-Digest": did, "X-Unit": unit.code})
        except Exception as exc:  # noqa: BLE001 - one unit's failure must not stop the others' digests
            report.failed[unit.code] = type(exc).__name__
            metrics.THANKS_DIGESTS.labels("failed").inc()
            log.warning("thanks_digest_failed", unit=unit.code, week=week, error=type(exc).__name__)
            continue
        # op_type create: two overlapping runs record a digest once (the CronJob forbids overlap too).
        es.options(ignore_status=409).index(index=index, id=did, op_type="create", refresh="wait_for",
                                            document=thanks.digest_record(mail, now or datetime.now(timezone.utc)))
        report.sent.append(unit.code)
        metrics.THANKS_DIGESTS.labels("sent").inc()
        log.info("thanks_digest_sent", unit=unit.code, week=week, thanks=mail.thanks, previous=mail.previous,
                 quotes=mail.quotes)
    return report


def push_metrics(settings: Settings, job: str = "feedback-thanks-digest") -> bool:
    """Push the digest counter to the Pushgateway when one is configured; whether it was pushed."""
    if not settings.metrics_pushgateway_url:
        return False
    from prometheus_client import CollectorRegistry, push_to_gateway

    registry = CollectorRegistry()
    registry.register(metrics.THANKS_DIGESTS)
    push_to_gateway(settings.metrics_pushgateway_url, job=job, registry=registry)
    return True
