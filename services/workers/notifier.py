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
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from tenacity import AsyncRetrying, retry_if_not_exception_type, stop_after_attempt, wait_exponential

from pipelines.clock import parse_ts, utc_now
from pipelines import notification_log as nlog
from pipelines.messages import render
from pipelines.optout import opt_out_url
from pipelines.units import units
from schemas.validate import event_errors
from services import metrics
from services.workers.compacted_view import CompactedView
from services.adapters.contacts_store import contact_vault
from services.adapters.delivery import SENDERS, NoAddressError, PermanentDeliveryError, failure_of
from services.workers.faults import DependencyUnavailable
from services.adapters.kafka_io import aiokafka_producer, dumps
from services.logs import get_logger
from services.workers.runtime import Event, Outputs, WorkerSpec, group_id, run_worker, send_dead_letter
from services.settings import Settings, get_settings
from services.topics import CLOSURE_DELIVERIES, CLOSURE_NOTIFICATIONS, NOTIFICATION_LOG, RESPONDENT_CONTACTS

log = get_logger("notifier")
STAGE = "notifier"
CONTACT_WAIT_S = 10.0  # a contact written just before its first notification may still be on its way
MAX_RECORDS = 10  # per poll: keeps the time between polls well under max.poll.interval.ms


class Notifier:
    """The notifier's handler and its per-partition state; services/workers/runtime.py runs it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.vault = contact_vault(settings)
        self.pseudonym_key = settings.pseudonym_key.get_secret_value().encode()
        self.log_topic = settings.topic(NOTIFICATION_LOG.name)
        self.contacts = CompactedView(settings, settings.topic(RESPONDENT_CONTACTS.name), self._on_contact,
                                      checked_by=f"{group_id(settings, STAGE)}-contacts")
        self.logs = CompactedView(settings, self.log_topic)
        self.erased: dict[int, set[bytes]] = {}  # refs whose contact is tombstoned, per partition
        self.producer = aiokafka_producer(settings)  # shared with the runtime, which starts it

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
                await send_dead_letter(self.producer, self.settings, STAGE, record, f"bad contact record: {exc}",
                                       type(exc).__name__)
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

    async def _receipt(self, note: dict[str, Any], status: str, channel: str | None, attempts: int,
                       reason: str | None = None, language: str | None = None,
                       failure: nlog.Failure | None = None) -> None:
        body = nlog.receipt(note, status, channel, attempts, utc_now(), reason, language, failure)
        metrics.NOTIFICATIONS.labels(channel or "none", status).inc()
        await self.producer.send_and_wait(self.settings.topic(CLOSURE_DELIVERIES.name),
                                          key=note["notification_id"].encode(), value=dumps(body))

    async def _finish(self, partition: int, note: dict[str, Any], entries: nlog.RespondentLog, status: str,
                      channel: str | None, attempts: int, reason: str | None = None,
                      language: str | None = None, failure: nlog.Failure | None = None) -> None:
        """Record the outcome durably, then its receipt, then that the receipt went out."""
        now = datetime.now(timezone.utc)
        nid, ref_key = note["notification_id"], note["respondent_ref"].encode()
        if ref_key in self.erased.get(partition, ()):
            # Erased while the notification was on its way: nothing may be kept under their ref.
            await self._receipt(note, status, channel, attempts, reason, language, failure)
            return
        entries = nlog.with_entry(entries, nid, nlog.Entry(status, now, False, channel, language, attempts), now)
        await self._write_log(partition, ref_key, entries)
        await self._receipt(note, status, channel, attempts, reason, language, failure)
        await self._write_log(partition, ref_key, nlog.with_entry(entries, nid, nlog.Entry(
            status, now, True, channel, language, attempts), now))
        if status.startswith("skipped_"):
            log.info("notification_skipped", notification_id=nid, status=status, channel=channel)

    # --- one notification -----------------------------------------------------------------

    async def handle(self, event: Event) -> None:
        """Deliver one closure.notifications event (idempotent: safe to run again).

        Raises DependencyUnavailable while the channel fails transiently and the
        notification's delivery deadline has not passed: the runtime waits and tries again.
        """
        partition, note = event.partition, event.body
        if note is None:
            return
        nid, ref_key = note["notification_id"], note["respondent_ref"].encode()
        entries = nlog.load((await self.logs.catch_up(partition)).get(ref_key))
        done = entries.get(nid)
        if done is not None and done.status in nlog.FINAL:
            if not done.receipt_sent:  # stopped between the outcome and its receipt
                await self._finish(partition, note, entries, done.status, done.channel, done.attempts,
                                   "receipt written after a restart", done.language)
                return
            if done.status != nlog.FAILED:
                metrics.NOTIFICATIONS.labels("none", "skipped_duplicate").inc()
                log.info("notification_duplicate_skipped", notification_id=nid)
                return
            # Failed before (deadline or a refused address), delivered again by a replay: try again.
            log.info("notification_retried_after_failure", notification_id=nid)
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
                         opt_out_url(self.settings.public_base_url, self.pseudonym_key, note["respondent_ref"],
                                     now.timestamp()))
        # Durable before the channel sees anything: after a crash, "sending" says it may have gone.
        entries = nlog.with_entry(entries, nid, nlog.Entry(nlog.SENDING, now, False, channel, message.language),
                                  now)
        await self._write_log(partition, ref_key, entries)
        if resumed:
            metrics.NOTIFICATIONS_RESUMED.labels(channel).inc()
            log.warning("notification_resent_unconfirmed", notification_id=nid, channel=channel)
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
            await self._finish(partition, note, entries, "skipped_no_contact", channel, attempts,
                               f"no address for {channel}", message.language, exc.failure)
            return
        except Exception as exc:  # noqa: BLE001 - permanent, or transient after every retry
            if not isinstance(exc, PermanentDeliveryError) and not self._past_deadline(note, now):
                # Still "sending" in the log: the next try resends with the same Message-ID.
                raise DependencyUnavailable(f"{channel} unavailable: {type(exc).__name__}") from exc
            # The class and status code only: a relay's reply text may echo the address.
            failure = failure_of(exc)
            await self._finish(partition, note, entries, "failed", channel, attempts,
                               failure.reason(deadline_passed=not isinstance(exc, PermanentDeliveryError)),
                               message.language, failure)
            log.warning("notification_failed", notification_id=nid, channel=channel, error=type(exc).__name__)
            return
        metrics.NOTIFICATION_SEND_SECONDS.labels(channel).observe(time.perf_counter() - started)
        await self._finish(partition, note, entries, "delivered", channel, attempts, None, message.language)
        log.info("notification_delivered", notification_id=nid, channel=channel, language=message.language,
                 attempts=attempts)

    def _past_deadline(self, note: dict[str, Any], now: datetime) -> bool:
        created = parse_ts(note["created_at"])
        return now - created > timedelta(hours=self.settings.notify_give_up_after_hours)

    async def handle_events(self, events: list[Event], out: Outputs) -> None:  # noqa: ARG002 - writes itself
        for event in events:
            await self.handle(event)
        metrics.EVENTS_PROCESSED.labels(STAGE, "ok").inc(len(events))

    async def on_revoked(self, revoked: set[Any]) -> None:
        """Forget the partitions' state: their next owner reads it from Kafka."""
        for tp in revoked:
            await self.contacts.drop(tp.partition)
            await self.logs.drop(tp.partition)
            self.erased.pop(tp.partition, None)

    async def close(self) -> None:
        await self.contacts.stop()
        await self.logs.stop()

    def spec(self) -> WorkerSpec:
        """One notification per handler call and per commit: its outcome is durable before
        the next one starts."""
        return WorkerSpec(stage=STAGE, topics=[CLOSURE_NOTIFICATIONS.name], handler=self.handle_events,
                          schema="closure.notifications", chunk=1, fetch_max=MAX_RECORDS,
                          on_revoked=self.on_revoked, close=self.close, producer=self.producer)


def build(settings: Settings) -> WorkerSpec:
    """The notifier's worker (the runtime's consumer group is the same as before: KEDA, alerts)."""
    return Notifier(settings).spec()


def main() -> None:
    run_worker(build, get_settings(), STAGE)
