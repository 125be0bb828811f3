"""Notifier: closure.notifications + contacts -> email / SMS / push -> closure.deliveries.

Runs on plain aiokafka, not faust: its guarantees rest on knowing exactly which
notification's offset is committed when, and faust's commit bookkeeping lost or stalled
notifications around restarts (docs/closure-loop.md). The loop is deliberately simple:
take one notification, finish it, commit its offset + 1, take the next.

State, all in Kafka and all keyed by respondent_ref (co-partitioned, so the worker that
owns partition p of closure.notifications reads partition p of the other two):

- respondent.contacts (compacted): the contact, still encrypted, decrypted only for the
  moment of sending. Read up to its end offset before each notification, so consent is
  checked at send time against the latest record; a tombstone (erasure) drops it.
- closure.notification_log (compacted, this worker's own): per respondent, what happened
  to each notification (pipelines/notification_log.py). Before a message is handed to a
  channel its entry becomes ``sending`` and that record is acknowledged by Kafka; the
  outcome (``delivered``, ``failed``, ``skipped_*``) is made durable the same way before
  its receipt goes to closure.deliveries and before the offset is committed. A
  notification redelivered after a crash is therefore skipped if its outcome is known,
  and resent with the same Message-ID / Idempotency-Key if it was ``sending`` (handed
  over, outcome unknown). The weekly frequency cap is checked against the same log.
"""
from __future__ import annotations

import asyncio
import json
import signal
import time
from datetime import datetime, timezone
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.abc import ConsumerRebalanceListener
from tenacity import AsyncRetrying, retry_if_not_exception_type, stop_after_attempt, wait_exponential

from pipelines import notification_log as nlog
from pipelines.messages import render
from pipelines.optout import opt_out_url
from pipelines.units import units
from pipelines.vault import ContactVault
from schemas.validate import event_errors
from services import metrics
from services.compacted_view import CompactedView
from services.delivery import SENDERS, NoAddressError, PermanentDeliveryError
from services.kafka_io import aiokafka_producer, dumps, utc_now
from services.logs import configure_logging, get_logger
from services.probe_server import ProbeServer
from services.settings import Settings, get_settings, service_port
from services.topics import (CLOSURE_DELIVERIES, CLOSURE_NOTIFICATIONS, FEEDBACK_DLQ, NOTIFICATION_LOG,
                             RESPONDENT_CONTACTS)
from services.processing import count_dead_letter, process_batch

log = get_logger("notifier")
STAGE = "notifier"
CONTACT_WAIT_S = 10.0  # a contact written just before its first notification may still be on its way
MAX_RECORDS = 10  # per poll: keeps the time between polls well under max.poll.interval.ms


def group_id(settings: Settings) -> str:
    """The consumer group (also what KEDA scales on): the same id the faust version had."""
    return f"{settings.topic_prefix}feedback-{STAGE}"


class Notifier(ConsumerRebalanceListener):
    """One notifier process: consume, send, record, commit; see the module docstring.
    It is its own consumer's rebalance listener."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.vault = ContactVault([k.get_secret_value() for k in settings.contact_keys])
        self.pseudonym_key = settings.pseudonym_key.get_secret_value().encode()
        self.notifications_topic = settings.topic(CLOSURE_NOTIFICATIONS.name)
        self.log_topic = settings.topic(NOTIFICATION_LOG.name)
        self.contacts = CompactedView(settings, settings.topic(RESPONDENT_CONTACTS.name), self._on_contact,
                                      checked_by=f"{group_id(settings)}-contacts")
        self.logs = CompactedView(settings, self.log_topic)
        self.erased: dict[int, set[bytes]] = {}  # refs whose contact is tombstoned, per partition
        self.producer = aiokafka_producer(settings)
        self.consumer: Any = None
        self.lock = asyncio.Lock()  # held while one notification is handled; a rebalance waits for it
        # Partitions this worker may process: emptied of revoked ones before any other worker
        # is assigned them (Kafka's guarantee), unlike consumer.assignment() mid-rebalance.
        self.owned: set[Any] = set()
        self.stopping = asyncio.Event()
        self.running = False

    # --- state ----------------------------------------------------------------------------

    async def _on_contact(self, partition: int, record: Any, new: bool) -> bytes | None:
        """A contact record read from Kafka: keep it, or drop the respondent on a tombstone."""
        if record.value is None:  # erased: their notification log goes too
            self.erased.setdefault(partition, set()).add(record.key)
            if self.logs.get(partition, record.key) is not None:
                await self._write_log(partition, record.key, None)
            return None
        self.erased.get(partition, set()).discard(record.key)
        try:
            errors = event_errors("respondent.contacts", json.loads(record.value))
            if errors:
                raise ValueError("; ".join(f"{e.field}: {e.problem}" for e in errors))
        except Exception as exc:  # noqa: BLE001
            if new:  # reported once: the reader remembers how far records were checked
                await self._dead_letter(f"bad contact record: {exc}", type(exc).__name__, record)
            return None
        return record.value

    async def _write_log(self, partition: int, ref_key: bytes, entries: nlog.RespondentLog | None) -> None:
        """Write a respondent's log and wait until Kafka acknowledges it (None: tombstone)."""
        value = None if entries is None else nlog.dump(entries)
        await self.producer.send_and_wait(self.log_topic, key=ref_key, value=value, partition=partition)
        self.logs.set_local(partition, ref_key, value)

    async def _contact_for(self, partition: int, ref_key: bytes) -> dict[str, Any] | None:
        deadline = time.monotonic() + CONTACT_WAIT_S
        while True:
            raw = (await self.contacts.catch_up(partition)).get(ref_key)
            if raw is not None or ref_key in self.erased.get(partition, ()) or time.monotonic() > deadline:
                return None if raw is None else json.loads(raw)
            await asyncio.sleep(0.5)

    # --- outputs --------------------------------------------------------------------------

    async def _dead_letter(self, reason: str, error_type: str, record: Any) -> None:
        body = count_dead_letter(STAGE, reason, error_type, record.value, topic=record.topic,
                                 partition=record.partition, offset=record.offset)
        await self.producer.send_and_wait(self.settings.topic(FEEDBACK_DLQ.name), value=body)

    async def _receipt(self, note: dict[str, Any], status: str, channel: str | None, attempts: int,
                       reason: str | None = None, language: str | None = None) -> None:
        body = {"schema_version": 1, "notification_id": note["notification_id"], "action_id": note["action_id"],
                "respondent_ref": note["respondent_ref"], "channel": channel, "language": language,
                "status": status, "attempts": attempts, "reason": reason, "at": utc_now()}
        metrics.NOTIFICATIONS.labels(channel or "none", status).inc()
        await self.producer.send_and_wait(self.settings.topic(CLOSURE_DELIVERIES.name),
                                          key=note["notification_id"].encode(), value=dumps(body))

    async def _finish(self, partition: int, note: dict[str, Any], entries: nlog.RespondentLog, status: str,
                      channel: str | None, attempts: int, reason: str | None = None,
                      language: str | None = None) -> None:
        """Record the outcome durably, then its receipt, then that the receipt went out."""
        now = datetime.now(timezone.utc)
        nid, ref_key = note["notification_id"], note["respondent_ref"].encode()
        if ref_key in self.erased.get(partition, ()):
            # Erased while the notification was on its way: nothing may be kept under their ref.
            await self._receipt(note, status, channel, attempts, reason, language)
            return
        entries = nlog.with_entry(entries, nid, nlog.Entry(status, now, False, channel, language, attempts), now)
        await self._write_log(partition, ref_key, entries)
        await self._receipt(note, status, channel, attempts, reason, language)
        await self._write_log(partition, ref_key, nlog.with_entry(entries, nid, nlog.Entry(
            status, now, True, channel, language, attempts), now))
        if status.startswith("skipped_"):
            log.info("notification_skipped", notification_id=nid, status=status, channel=channel)

    # --- one notification -----------------------------------------------------------------

    async def handle(self, record: Any) -> None:
        """Deliver one closure.notifications record (idempotent: safe to run again)."""
        partition = record.partition
        try:
            note = json.loads(record.value)
            errors = event_errors("closure.notifications", note)
            if errors:
                raise ValueError("; ".join(f"{e.field}: {e.problem}" for e in errors))
        except Exception as exc:  # noqa: BLE001
            await self._dead_letter(f"bad notification: {exc}", type(exc).__name__, record)
            return
        nid, ref_key = note["notification_id"], note["respondent_ref"].encode()
        entries = nlog.load((await self.logs.catch_up(partition)).get(ref_key))
        done = entries.get(nid)
        if done is not None and done.status in nlog.FINAL:
            if not done.receipt_sent:  # stopped between the outcome and its receipt
                await self._finish(partition, note, entries, done.status, done.channel, done.attempts,
                                   "receipt written after a restart", done.language)
                return
            metrics.NOTIFICATIONS.labels("none", "skipped_duplicate").inc()
            log.info("notification_duplicate_skipped", notification_id=nid)
            return
        resumed = done is not None and done.status == nlog.SENDING
        contact_record = await self._contact_for(partition, ref_key)
        if contact_record is None:
            await self._finish(partition, note, entries, "skipped_no_contact", None, 0, "no contact record")
            return
        if not contact_record["consent"]["follow_up"]:
            await self._finish(partition, note, entries, "skipped_no_consent", None, 0,
                               "respondent has not consented")
            return
        channel = contact_record["preferred_channel"]
        now = datetime.now(timezone.utc)
        cap = self.settings.notify_max_per_week
        if nlog.over_cap(entries, nid, now, cap):
            await self._finish(partition, note, entries, "skipped_frequency_cap", channel, 0,
                               f"already {cap} messages in 7 days")
            return
        contact = self.vault.decrypt(contact_record["contact_ciphertext"])
        unit = units().get(note["unit"])
        message = render(contact_record.get("language") or note["language"], note["messages"],
                         unit.names if unit else {"fi": note["unit"]},
                         opt_out_url(self.settings.public_base_url, self.pseudonym_key, note["respondent_ref"]))
        # Durable before the channel sees anything: after a crash, "sending" says it may have gone.
        entries = nlog.with_entry(entries, nid, nlog.Entry(nlog.SENDING, now, False, channel, message.language),
                                  now)
        await self._write_log(partition, ref_key, entries)
        if resumed:
            metrics.NOTIFICATIONS_RESUMED.labels(channel).inc()
            log.warning("notification_resent_after_restart", notification_id=nid, channel=channel)
        sender = SENDERS[channel]
        attempts = 0
        started = time.perf_counter()
        try:
            async for attempt in AsyncRetrying(
                    stop=stop_after_attempt(self.settings.notify_retry_attempts),
                    wait=wait_exponential(multiplier=self.settings.notify_retry_initial_s, max=10),
                    retry=retry_if_not_exception_type(PermanentDeliveryError), reraise=True):
                with attempt:
                    attempts += 1
                    await asyncio.get_running_loop().run_in_executor(None, sender, self.settings, contact, message,
                                                                     nid)
        except NoAddressError as exc:
            await self._finish(partition, note, entries, "skipped_no_contact", channel, attempts, str(exc),
                               message.language)
            return
        except Exception as exc:  # noqa: BLE001 - permanent, or transient after every retry
            await self._finish(partition, note, entries, "failed", channel, attempts,
                               f"{type(exc).__name__}: {exc}"[:500], message.language)
            log.warning("notification_failed", notification_id=nid, channel=channel, error=type(exc).__name__)
            return
        metrics.NOTIFICATION_SEND_SECONDS.labels(channel).observe(time.perf_counter() - started)
        await self._finish(partition, note, entries, "delivered", channel, attempts, None, message.language)
        log.info("notification_delivered", notification_id=nid, channel=channel, language=message.language,
                 attempts=attempts)

    async def _handle_batch(self, records: list[Any]) -> None:
        for record in records:
            await self.handle(record)
        metrics.EVENTS_PROCESSED.labels(STAGE, "ok").inc(len(records))

    # --- the loop -------------------------------------------------------------------------

    async def on_partitions_revoked(self, revoked: Any) -> None:
        """Wait for the notification in hand (its offset is committed when the lock frees),
        then forget the partitions' state: their next owner reads it from Kafka."""
        async with self.lock:
            for tp in revoked:
                self.owned.discard(tp)
                await self.contacts.drop(tp.partition)
                await self.logs.drop(tp.partition)
                self.erased.pop(tp.partition, None)
        log.info("partitions_revoked", partitions=sorted(tp.partition for tp in revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.owned |= set(assigned)
        log.info("partitions_assigned", partitions=sorted(tp.partition for tp in assigned))

    async def _commit(self, tp: Any, offset: int) -> None:
        try:
            await self.consumer.commit({tp: offset})
        except Exception as exc:  # noqa: BLE001 - a rebalance took the partition: its next owner redoes it,
            # and the notification log makes that harmless
            log.warning("commit_failed", partition=tp.partition, offset=offset, error=type(exc).__name__)

    async def run(self) -> None:
        """Consume until ``stopping`` is set; each notification committed once handled."""
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap, group_id=group_id(self.settings),
            enable_auto_commit=False, auto_offset_reset="earliest",
            # A dead member holds its partitions for session_timeout_ms; under the 40 s request
            # timeout, so the JoinGroup that waits for it does not time out first.
            session_timeout_ms=30_000, heartbeat_interval_ms=3_000, max_poll_interval_ms=600_000)
        await self.producer.start()
        try:
            self.consumer.subscribe([self.notifications_topic], listener=self)
            await self.consumer.start()
            try:
                self.running = True
                metrics.SERVICE_UP.labels(STAGE).set(1)
                log.info("worker_started", service=STAGE)
                while not self.stopping.is_set():
                    batch = await self.consumer.getmany(timeout_ms=500, max_records=MAX_RECORDS)
                    for tp, records in batch.items():
                        for record in records:
                            async with self.lock:
                                if self.stopping.is_set() or tp not in self.owned:
                                    break  # not committed: redelivered to whoever owns the partition next
                                await process_batch(STAGE, self._handle_batch, [record])
                                await self._commit(tp, record.offset + 1)
            finally:
                self.running = False
                metrics.SERVICE_UP.labels(STAGE).set(0)
                await self.consumer.stop()  # leaves the group: the partitions move on at once
        finally:
            await self.contacts.stop()
            await self.logs.stop()
            await self.producer.stop()


async def serve(settings: Settings) -> None:
    """Run the notifier with its probe pages until SIGTERM or SIGINT."""
    notifier = Notifier(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, notifier.stopping.set)
    probes = ProbeServer(STAGE, settings.host, service_port(STAGE, settings), lambda: notifier.running)
    await probes.start()
    try:
        await notifier.run()
    finally:
        log.info("service_stopping", service=STAGE)
        await probes.stop()


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, STAGE)
    asyncio.run(serve(settings))
