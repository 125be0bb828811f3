"""Urgent worker: feedback.urgent -> an email to the unit's duty address; feedback.urgent_acks
-> the item is acknowledged; on a timer, what nobody acknowledged in time is escalated to
the service area's address (addresses: schemas/units.json; domain: pipelines/urgent.py).

State lies in Elasticsearch, index ``<alias>-urgent`` (one document per item, _id =
feedback_id, no text and nothing personal), written only by this worker. Elasticsearch
rather than a compacted topic because both readers need queries over it: the console
lists a lead's unacknowledged items by unit, and the escalation check asks for open items
whose duty email is older than the configured time; a restart reads nothing back, it just
queries again. Writes after a read carry the read's seq_no, so an acknowledgement and an
escalation that race (two replicas during a rolling update) cannot overwrite each other.

Emails are at least once: the state is written after SMTP accepted the email, so a crash
in between sends it again on redelivery, with the same Message-ID (mail stores show one).
A transient SMTP or Elasticsearch failure makes the runtime wait and retry; a refused
address or an unknown unit dead-letters the record with the reason.
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

from elasticsearch import ConflictError

from pipelines import urgent as domain
from pipelines.clock import utc_iso
from pipelines.units import escalation_email, service_areas, units
from services import metrics
from services.adapters.delivery import PermanentDeliveryError, send_staff_email
from services.adapters.es import alias_exists, async_es_client
from services.adapters.stores import async_ensure_index, urgent_index
from services.logs import get_logger
from services.settings import Settings, get_settings
from services.topics import FEEDBACK_URGENT, URGENT_ACKS
from services.workers.faults import DependencyUnavailable
from services.workers.runtime import Event, Outputs, WorkerSpec, run_worker

log = get_logger("urgent")
STAGE = "urgent"
ESCALATE_PER_CHECK = 100  # items escalated per timer tick; the next tick takes the rest


class UrgentWorker:
    """The handler, the escalation job and the open-items gauge; the runtime runs them."""

    def __init__(self, settings: Settings, es: Any) -> None:
        self.settings, self.es = settings, es
        self.index = urgent_index(settings.index_alias)
        self.index_ready = False
        self.lock = asyncio.Lock()  # one item change at a time: handler and timer share the state

    # --- state store ---------------------------------------------------------------------

    async def _ensure_index(self) -> None:
        if not self.index_ready:
            await async_ensure_index(self.es, self.settings.index_alias, "urgent")
            self.index_ready = True

    async def _get(self, feedback_id: str) -> tuple[dict[str, Any], int, int] | None:
        """The item's state with its seq_no and primary term, or None."""
        await self._ensure_index()
        resp = await self.es.options(ignore_status=404).get(index=self.index, id=feedback_id)
        if not resp.get("found"):
            return None
        return resp["_source"], resp["_seq_no"], resp["_primary_term"]

    async def _write(self, state: dict[str, Any], version: tuple[int, int] | None = None) -> None:
        """Write the item's state, visible to the console's next search; with ``version``
        only if nobody changed it since it was read (ConflictError otherwise)."""
        kwargs: dict[str, Any] = {}
        if version is not None:
            kwargs = {"if_seq_no": version[0], "if_primary_term": version[1]}
        await self.es.index(index=self.index, id=state["feedback_id"], document=state, refresh="wait_for", **kwargs)

    async def _text(self, feedback_id: str) -> str | None:
        """The redacted text from the feedback alias (None once erased or before it is indexed)."""
        resp = await self.es.options(ignore_status=404).search(
            index=self.settings.index_alias, query={"ids": {"values": [feedback_id]}}, source=["text"], size=1)
        hits = resp.get("hits", {}).get("hits", [])
        return hits[0]["_source"].get("text") if hits else None

    # --- email ---------------------------------------------------------------------------

    async def _send(self, email: domain.UrgentEmail, feedback_id: str) -> None:
        headers = {"X-Feedback-Id": feedback_id, "X-Urgent-Kind": email.kind}
        try:
            await asyncio.get_running_loop().run_in_executor(
                None, send_staff_email, self.settings, email.to, email.subject, email.body, email.mail_id, headers)
        except PermanentDeliveryError:
            raise
        except Exception as exc:  # noqa: BLE001 - SMTP down or refusing for now: wait and retry
            raise DependencyUnavailable(f"smtp unavailable: {type(exc).__name__}") from exc

    # --- inputs --------------------------------------------------------------------------

    async def handle(self, events: list[Event], out: Outputs) -> None:  # noqa: ARG002 - writes to ES and SMTP
        for ev in events:
            async with self.lock:
                if ev.topic == self.settings.topic(FEEDBACK_URGENT.name):
                    await self.on_urgent(ev)
                else:
                    await self.on_ack(ev)
            metrics.EVENTS_PROCESSED.labels(STAGE, "ok").inc()

    async def on_urgent(self, ev: Event) -> None:
        """Email the unit's duty address once per item, then record the item as open."""
        if ev.body is None:  # an erasure's tombstone: the item goes with the feedback
            await self._ensure_index()
            await self.es.options(ignore_status=404).delete(index=self.index, id=ev.key_text or "",
                                                            refresh="wait_for")
            return
        event = ev.body
        fid = event["feedback_id"]
        if await self._get(fid) is not None:
            log.info("urgent_duplicate_skipped", feedback_id=fid)  # a replay: the duty email went out before
            return
        unit = units().get(event["unit"])
        if unit is None:
            raise ValueError(f"unit {event['unit']!r} is not in schemas/units.json: no duty address")
        await self._send(domain.duty_email(event, unit, self.settings.public_base_url), fid)
        await self._write(domain.new_state(event, datetime.now(timezone.utc)))
        metrics.URGENT_EMAILS.labels(domain.DUTY, unit.service_area).inc()
        metrics.URGENT_OPEN.labels(unit.service_area).inc()
        log.info("urgent_duty_email_sent", feedback_id=fid, unit=unit.code)

    async def on_ack(self, ev: Event) -> None:
        """Mark the item acknowledged (a repeat changes nothing) and time it."""
        if ev.body is None:
            return
        ack = ev.body
        found = await self._get(ack["feedback_id"])
        if found is None:
            raise ValueError(f"no urgent item {ack['feedback_id']} to acknowledge")
        state, seq_no, term = found
        change = domain.acknowledgement(state, ack)
        if change is None:
            return
        fields, waited_s = change
        try:
            await self._write({**state, **fields}, (seq_no, term))
        except ConflictError as exc:  # another replica changed it since: read again and retry
            raise DependencyUnavailable("urgent item changed concurrently") from exc
        metrics.URGENT_ACK_SECONDS.labels(state["service_area"]).observe(waited_s)
        log.info("urgent_acknowledged", feedback_id=state["feedback_id"], unit=state["unit"],
                 acknowledged_by=ack["acknowledged_by"], seconds=round(waited_s, 1))

    # --- timer ---------------------------------------------------------------------------

    async def check(self) -> None:
        """Escalate what is due, then refresh the open-items gauge (the runtime's timer)."""
        async with self.lock:
            await self.escalate_due()
        await self.open_gauge()

    async def escalate_due(self) -> None:
        """Email each service area's address about open items older than the configured time."""
        await self._ensure_index()
        after_s = self.settings.urgent_escalate_after_s
        resp = await self.es.search(index=self.index, size=ESCALATE_PER_CHECK, seq_no_primary_term=True,
                                    query=domain.due_for_escalation_query(datetime.now(timezone.utc), after_s),
                                    sort=[{"duty_email_sent_at": "asc"}])
        for hit in resp["hits"]["hits"]:
            state = hit["_source"]
            unit = units()[state["unit"]]
            email = domain.escalation_email(state, unit, escalation_email(unit.service_area),
                                            await self._text(state["feedback_id"]),
                                            self.settings.public_base_url, after_s)
            await self._send(email, state["feedback_id"])
            try:
                await self._write({**state, "status": domain.ESCALATED,
                                   "escalated_at": utc_iso(datetime.now(timezone.utc))},
                                  (hit["_seq_no"], hit["_primary_term"]))
            except ConflictError:
                # Acknowledged while the email was on its way: the acknowledgement stands.
                log.info("urgent_escalation_raced_ack", feedback_id=state["feedback_id"])
                continue
            metrics.URGENT_EMAILS.labels(domain.ESCALATION, unit.service_area).inc()
            metrics.URGENT_ESCALATIONS.labels(unit.service_area).inc()
            log.warning("urgent_escalated", feedback_id=state["feedback_id"], unit=unit.code,
                        service_area=unit.service_area)

    async def open_gauge(self) -> None:
        """Unacknowledged items per service area, counted in the state store."""
        await self._ensure_index()
        resp = await self.es.search(index=self.index, size=0, query=domain.unacknowledged_query(None),
                                    aggs={"areas": {"terms": {"field": "service_area", "size": 100}}})
        counts = {b["key"]: b["doc_count"] for b in resp["aggregations"]["areas"]["buckets"]}
        for area in service_areas():
            metrics.URGENT_OPEN.labels(area).set(counts.get(area, 0))


def build(settings: Settings | None = None) -> WorkerSpec:
    """The urgent worker: one record per handler call and commit, the escalation check on a timer."""
    settings = settings or get_settings()
    es = async_es_client(settings)
    worker = UrgentWorker(settings, es)
    return WorkerSpec(stage=STAGE, topics=[FEEDBACK_URGENT.name, URGENT_ACKS.name], handler=worker.handle,
                      schema={FEEDBACK_URGENT.name: FEEDBACK_URGENT.schema, URGENT_ACKS.name: URGENT_ACKS.schema},
                      chunk=1, fetch_max=20, ready_check=lambda: alias_exists(es, settings.index_alias),
                      periodic=[(settings.urgent_check_interval_s, worker.check)], close=es.close)


def main() -> None:
    run_worker(build, get_settings(), STAGE)
