"""Notifier: closure.notifications + contacts -> email / SMS / push -> closure.deliveries.

Contacts are read from the compacted respondent.contacts topic into a faust table
(still encrypted; decrypted only for the moment of sending). Both topics are keyed
by respondent_ref with the same partition count, so a worker holds the contacts of
exactly the respondents whose notifications it receives. Consent is checked at send
time, and a table of sent notification ids makes every notification go out once.
"""
from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from tenacity import AsyncRetrying, retry_if_not_exception_type, stop_after_attempt, wait_exponential

from pipelines.messages import render
from pipelines.optout import opt_out_url
from pipelines.units import units
from pipelines.vault import ContactVault
from schemas.validate import event_errors
from services import metrics
from services.delivery import SENDERS, NoAddressError, PermanentDeliveryError
from services.kafka_io import dumps, utc_now
from services.logs import get_logger
from services.settings import Settings, get_settings
from services.topics import CLOSURE_DELIVERIES, CLOSURE_NOTIFICATIONS, RESPONDENT_CONTACTS
from services.worker import DeadLetters, event_context, make_app, process_batch

log = get_logger("notifier")
STAGE = "notifier"
CONTACT_WAIT_S = 20.0  # a contact written just before its first notification may still be on its way


def build(settings: Settings | None = None):
    settings = settings or get_settings()
    app = make_app(STAGE, settings)
    vault = ContactVault([k.get_secret_value() for k in settings.contact_keys])
    key = settings.pseudonym_key.get_secret_value().encode()
    contacts_topic = app.topic(settings.topic(RESPONDENT_CONTACTS.name), value_serializer="raw",
                               key_serializer="raw")
    notifications = app.topic(settings.topic(CLOSURE_NOTIFICATIONS.name), value_serializer="raw",
                              key_serializer="raw")
    deliveries = app.topic(settings.topic(CLOSURE_DELIVERIES.name), value_serializer="raw", key_serializer="raw")
    dlq = DeadLetters(app, settings, STAGE)
    # Values are raw bytes (the app's serializer): the contact record as JSON, still encrypted.
    contacts = app.Table("contacts", default=None, partitions=RESPONDENT_CONTACTS.partitions)
    sent = app.Table("sent", default=None, partitions=CLOSURE_NOTIFICATIONS.partitions)

    @app.agent(contacts_topic)
    async def load_contacts(stream: Any) -> None:
        async for ev in stream.events():
            if ev.key is None:
                continue
            if ev.value is None:  # tombstone: the respondent was erased
                contacts.pop(ev.key, None)
                continue
            try:
                record = json.loads(ev.value)
                errors = event_errors("respondent.contacts", record)
                if errors:
                    raise ValueError("; ".join(f"{e.field}: {e.problem}" for e in errors))
            except Exception as exc:  # noqa: BLE001
                await dlq.send(f"bad contact record: {exc}", type(exc).__name__, ev.value, event=ev)
                continue
            contacts[ev.key] = ev.value

    async def receipt(note: dict[str, Any], status: str, channel: str | None, attempts: int,
                      reason: str | None = None, language: str | None = None) -> Any:
        body = {"schema_version": 1, "notification_id": note["notification_id"], "action_id": note["action_id"],
                "respondent_ref": note["respondent_ref"], "channel": channel, "language": language,
                "status": status, "attempts": attempts, "reason": reason, "at": utc_now()}
        metrics.NOTIFICATIONS.labels(channel or "none", status).inc()
        return await deliveries.send(key=note["notification_id"].encode(), value=dumps(body))

    async def contact_for(ref: bytes) -> dict[str, Any] | None:
        deadline = time.monotonic() + CONTACT_WAIT_S
        while (raw := contacts.get(ref)) is None and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        return None if raw is None else json.loads(raw)

    async def deliver(ev: Any) -> None:
        raw: bytes = ev.value if isinstance(ev.value, bytes) else str(ev.value).encode()
        try:
            note = json.loads(raw)
            errors = event_errors("closure.notifications", note)
            if errors:
                raise ValueError("; ".join(f"{e.field}: {e.problem}" for e in errors))
        except Exception as exc:  # noqa: BLE001
            await (await dlq.send(f"bad notification: {exc}", type(exc).__name__, raw, event=ev))
            return
        nid = note["notification_id"]
        if sent.get(nid.encode()):
            metrics.NOTIFICATIONS.labels("none", "skipped_duplicate").inc()
            log.info("notification_duplicate_skipped", notification_id=nid)
            return
        record = await contact_for(note["respondent_ref"].encode())
        if record is None:
            await (await receipt(note, "skipped_no_contact", None, 0, "no contact record"))
            sent[nid.encode()] = b"skipped_no_contact"
            return
        if not record["consent"]["follow_up"]:
            await (await receipt(note, "skipped_no_consent", None, 0, "respondent has not consented"))
            sent[nid.encode()] = b"skipped_no_consent"
            return
        channel = record["preferred_channel"]
        contact = vault.decrypt(record["contact_ciphertext"])
        unit = units().get(note["unit"])
        message = render(record.get("language") or note["language"], note["messages"],
                         unit.names if unit else {"fi": note["unit"]},
                         opt_out_url(settings.public_base_url, key, note["respondent_ref"]))
        sender = SENDERS[channel]
        attempts = 0
        started = time.perf_counter()
        try:
            async for attempt in AsyncRetrying(stop=stop_after_attempt(5), wait=wait_exponential(0.5, max=10),
                                               retry=retry_if_not_exception_type(PermanentDeliveryError),
                                               reraise=True):
                with attempt:
                    attempts += 1
                    await asyncio.get_running_loop().run_in_executor(None, sender, settings, contact, message, nid)
        except NoAddressError as exc:
            await (await receipt(note, "skipped_no_contact", channel, attempts, str(exc), message.language))
            sent[nid.encode()] = b"skipped_no_contact"
            return
        except Exception as exc:  # noqa: BLE001 - permanent, or transient after every retry
            await (await receipt(note, "failed", channel, attempts, f"{type(exc).__name__}: {exc}"[:500],
                                 message.language))
            sent[nid.encode()] = b"failed"
            log.warning("notification_failed", notification_id=nid, channel=channel, error=type(exc).__name__)
            return
        sent[nid.encode()] = b"delivered"
        metrics.NOTIFICATION_SEND_SECONDS.labels(channel).observe(time.perf_counter() - started)
        await (await receipt(note, "delivered", channel, attempts, None, message.language))
        log.info("notification_delivered", notification_id=nid, channel=channel, language=message.language)

    async def process(events: list[Any]) -> None:
        for ev in events:
            with event_context(ev):
                await deliver(ev)
        metrics.EVENTS_PROCESSED.labels(STAGE, "ok").inc(len(events))

    @app.agent(notifications)
    async def notify(stream: Any) -> None:
        async for events in stream.take_events(20, within=0.5):
            await process_batch(STAGE, process, list(events))

    return app


def main() -> None:
    from services.worker import run_worker

    settings = get_settings()
    run_worker(STAGE, build(settings), settings)
