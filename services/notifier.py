"""Notifier: closure.notifications + contacts -> email / SMS / push -> closure.deliveries.

Contacts are read from the compacted respondent.contacts topic into a faust table
(still encrypted; decrypted only for the moment of sending). Both topics are keyed
by respondent_ref with the same partition count, so a worker holds the contacts of
exactly the respondents whose notifications it receives. Consent is checked at send
time; a tombstone (erasure) drops the contact and the respondent's log.

Exactly-once as far as it can be had (docs/closure-loop.md): every respondent has a
log in the ``notified`` table (pipelines/notification_log.py). Before a message is
handed to a channel its entry becomes ``sending``, and only after that changelog
record is acknowledged by Kafka does the send start; the outcome (``delivered``,
``failed``, ``skipped_*``) is made durable the same way before its receipt goes to
closure.deliveries. A notification redelivered after a crash is therefore skipped
if its outcome is known, and resent with the same Message-ID / Idempotency-Key if
it was ``sending`` (handed over, outcome unknown). A frequency cap per respondent
(settings.notify_max_per_week) is checked against the same log.
"""
from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timezone
from typing import Any

from tenacity import AsyncRetrying, retry_if_not_exception_type, stop_after_attempt, wait_exponential

from pipelines import notification_log as nlog
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
from services.skipped_records import SkippedRecords
from services.topics import CLOSURE_DELIVERIES, CLOSURE_NOTIFICATIONS, DAY_MS, RESPONDENT_CONTACTS
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
    # The changelogs hold copies of the contacts: compacted on the same schedule as the
    # topic itself, so an erasure's tombstone clears them as fast (docs/privacy.md).
    changelog = {k: v for k, v in RESPONDENT_CONTACTS.config.items() if k != "cleanup.policy"}
    changelog["max.compaction.lag.ms"] = str(DAY_MS)
    # Raw bytes in and out: a faust table defaults to the json codec, which writes bytes keys
    # unchanged but cannot read them back, so recovery after a restart never finished.
    raw = {"key_type": bytes, "value_type": bytes, "extra_topic_configs": changelog}
    contacts = app.Table("contacts", default=None, partitions=RESPONDENT_CONTACTS.partitions, **raw)
    # respondent_ref -> that respondent's notification log (pipelines/notification_log.py).
    notified = app.Table("notified", default=None, partitions=CLOSURE_NOTIFICATIONS.partitions, **raw)
    # faust compares source and changelog partition counts using the consumer's metadata snapshot
    # from the group join; a changelog created moments before reads as 0 partitions until the next
    # rebalance, and every table write then raises PartitionsMismatch. Both counts are declared
    # above from services/topics.py, so the check is settled here.
    # (notified is also written from the contacts agent: an erasure drops the respondent's log.)
    for table, source in ((contacts, RESPONDENT_CONTACTS), (notified, CLOSURE_NOTIFICATIONS),
                          (notified, RESPONDENT_CONTACTS)):
        table._verified_source_topics_for_partitions.add(settings.topic(source.name))

    @app.agent(contacts_topic)
    async def load_contacts(stream: Any) -> None:
        async for ev in stream.events():
            if ev.key is None:
                continue
            if ev.value is None:  # tombstone: the respondent was erased
                contacts.pop(ev.key, None)  # also writes a tombstone to the table's changelog
                notified.pop(ev.key, None)
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

    async def save(ref_key: bytes, entries: nlog.RespondentLog) -> None:
        """Set the respondent's log and wait until Kafka acknowledges its changelog record.

        ``table[key] = value`` only buffers the changelog write; a SIGKILL right after
        it could lose the record, and a lost "delivered" would mean a duplicate after
        restart. So the store is set directly and the changelog record awaited.
        """
        value = nlog.dump(entries)
        notified.data[ref_key] = value
        await notified.send_changelog(notified.partition_for_key(ref_key), ref_key, value)

    async def finish(note: dict[str, Any], entries: nlog.RespondentLog, status: str, channel: str | None,
                     attempts: int, reason: str | None = None, language: str | None = None) -> None:
        """Record the outcome durably, then its receipt, then that the receipt went out."""
        now = datetime.now(timezone.utc)
        nid, ref_key = note["notification_id"], note["respondent_ref"].encode()
        entry = nlog.Entry(status, now, False, channel, language, attempts)
        entries = nlog.with_entry(entries, nid, entry, now)
        await save(ref_key, entries)
        await (await receipt(note, status, channel, attempts, reason, language))
        # Not awaited: if this is lost, the receipt is written again (receipts are keyed by id).
        notified[ref_key] = nlog.dump(nlog.with_entry(entries, nid, nlog.Entry(
            status, now, True, channel, language, attempts), now))
        if status.startswith("skipped_"):
            log.info("notification_skipped", notification_id=nid, status=status, channel=channel)

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
        nid, ref_key = note["notification_id"], note["respondent_ref"].encode()
        entries = nlog.load(notified.get(ref_key))
        done = entries.get(nid)
        if done is not None and done.status in nlog.FINAL:
            if not done.receipt_sent:  # stopped between the outcome and its receipt
                await finish(note, entries, done.status, done.channel, done.attempts,
                             "receipt written after a restart", done.language)
                return
            metrics.NOTIFICATIONS.labels("none", "skipped_duplicate").inc()
            log.info("notification_duplicate_skipped", notification_id=nid)
            return
        resumed = done is not None and done.status == nlog.SENDING
        record = await contact_for(ref_key)
        if record is None:
            await finish(note, entries, "skipped_no_contact", None, 0, "no contact record")
            return
        if not record["consent"]["follow_up"]:
            await finish(note, entries, "skipped_no_consent", None, 0, "respondent has not consented")
            return
        channel = record["preferred_channel"]
        now = datetime.now(timezone.utc)
        if nlog.over_cap(entries, nid, now, settings.notify_max_per_week):
            await finish(note, entries, "skipped_frequency_cap", channel, 0,
                         f"already {settings.notify_max_per_week} messages in 7 days")
            return
        contact = vault.decrypt(record["contact_ciphertext"])
        unit = units().get(note["unit"])
        message = render(record.get("language") or note["language"], note["messages"],
                         unit.names if unit else {"fi": note["unit"]},
                         opt_out_url(settings.public_base_url, key, note["respondent_ref"]))
        # Durable before the channel sees anything: after a crash, "sending" says it may have gone.
        entries = nlog.with_entry(entries, nid, nlog.Entry(nlog.SENDING, now, False, channel, message.language),
                                  now)
        await save(ref_key, entries)
        if resumed:
            metrics.NOTIFICATIONS_RESUMED.labels(channel).inc()
            log.warning("notification_resent_after_restart", notification_id=nid, channel=channel)
        sender = SENDERS[channel]
        attempts = 0
        started = time.perf_counter()
        try:
            async for attempt in AsyncRetrying(
                    stop=stop_after_attempt(settings.notify_retry_attempts),
                    wait=wait_exponential(multiplier=settings.notify_retry_initial_s, max=10),
                    retry=retry_if_not_exception_type(PermanentDeliveryError), reraise=True):
                with attempt:
                    attempts += 1
                    await asyncio.get_running_loop().run_in_executor(None, sender, settings, contact, message, nid)
        except NoAddressError as exc:
            await finish(note, entries, "skipped_no_contact", channel, attempts, str(exc), message.language)
            return
        except Exception as exc:  # noqa: BLE001 - permanent, or transient after every retry
            await finish(note, entries, "failed", channel, attempts, f"{type(exc).__name__}: {exc}"[:500],
                         message.language)
            log.warning("notification_failed", notification_id=nid, channel=channel, error=type(exc).__name__)
            return
        metrics.NOTIFICATION_SEND_SECONDS.labels(channel).observe(time.perf_counter() - started)
        await finish(note, entries, "delivered", channel, attempts, None, message.language)
        log.info("notification_delivered", notification_id=nid, channel=channel, language=message.language,
                 attempts=attempts)

    async def process(events: list[Any]) -> None:
        for ev in events:
            # A recovered record writes its table entries under the event after its hole
            # (same partition): faust picks the changelog partition from the current event.
            with event_context(getattr(ev, "context", ev)):
                await deliver(ev)
        metrics.EVENTS_PROCESSED.labels(STAGE, "ok").inc(len(events))

    skipped = SkippedRecords(settings, STAGE, app.conf.id)

    @app.on_partitions_revoked.connect
    async def _forget_offsets(app: Any, revoked: Any, **kwargs: Any) -> None:  # noqa: ARG001
        skipped.forget()

    @app.agent(notifications)
    async def notify(stream: Any) -> None:
        # One event at a time: sends are sequential anyway, and a plain iteration acks an event
        # only after its own processing finished (no batch of 20 to redo after a crash).
        async for ev in stream.events():
            await process_batch(STAGE, process, [*await skipped.before(ev), ev])

    return app


def main() -> None:
    from services.worker import run_worker

    settings = get_settings()
    run_worker(STAGE, build(settings), settings)
