"""The one runtime of every at-least-once worker (enricher, indexer, closure, notifier).

Plain aiokafka, so that what is committed when is visible in this file:

1. fetch adaptively (:func:`fetch_batch`): wait for the first record, then take only what
   has already arrived, up to ``fetch_max`` records: one record is handled at once when the
   input is idle, batches form only under load (a worker may ``linger`` a short deadline
   for more, e.g. the indexer's bulk requests);
2. decode each record into a valid event or a dead letter (stage, reason, the bytes);
3. hand the events of one partition to the worker's handler, ``chunk`` at a time,
   with an :class:`Outputs` for everything it writes to Kafka;
4. wait until Kafka acknowledged every output, then commit the chunk's last offset + 1.

When the handler fails because a dependency is down (:func:`services.workers.faults.is_transient`)
the chunk is retried with back-off for as long as it takes: the worker pauses its
partitions, keeps its group membership, reports not ready, and never exits. Any other
failure is blamed on the input: the chunk is split in halves until the one record that
fails is found, and only that record is dead-lettered.

A rebalance waits for the attempt in hand (never for a back-off) and the partitions it
takes away are neither processed further nor committed by this worker. SIGTERM does the
same and leaves the group.
"""
from __future__ import annotations

import asyncio
import gc
import json
import signal
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener

from schemas.validate import event_errors
from services import metrics
from services.workers.faults import is_kafka_error, is_transient
from services.adapters.contacts_store import contact_vault
from services.adapters.kafka_io import aiokafka_producer, kafka_security
from services.logs import configure_logging, get_logger
from services.workers.probe_server import ProbeServer
from services.workers.processing import count_dead_letter
from services.settings import Settings, service_port
from services.topics import FEEDBACK_DLQ

log = get_logger("runtime")

BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 15.0
POISON_ATTEMPTS = 2  # a single record that fails this often (not for a dependency) is dead-lettered


@dataclass(frozen=True)
class Event:
    """One input record, decoded: ``body`` is the validated JSON object, None for a tombstone."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    body: dict[str, Any] | None

    @property
    def key_text(self) -> str | None:
        return self.key.decode("utf-8", "replace") if self.key is not None else None


@dataclass(frozen=True)
class DeadLetter:
    """A record that cannot be processed, and why."""

    reason: str
    error_type: str
    feedback_id: str | None = None


def decode(record: Any, schema: str | None) -> Event | DeadLetter:
    """A Kafka record as a valid event, a tombstone event, or a dead letter with the reason."""
    base = dict(topic=record.topic, partition=record.partition, offset=record.offset, key=record.key,
                value=record.value)
    if record.value is None:
        return Event(**base, body=None)
    try:
        body = json.loads(record.value)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return DeadLetter(f"not JSON: {exc}", "invalid_json")
    if not isinstance(body, dict):
        return DeadLetter(f"not a JSON object: {type(body).__name__}", "schema_violation")
    if schema is not None:
        errors = event_errors(schema, body)
        if errors:
            fid = body.get("feedback_id")
            return DeadLetter("schema: " + "; ".join(f"{e.field}: {e.problem}" for e in errors),
                              "schema_violation", fid if isinstance(fid, str) else None)
    return Event(**base, body=body)


class Outputs:
    """What a handler writes to Kafka in one attempt; the runtime waits for every
    acknowledgement before it commits."""

    def __init__(self, producer: Any, settings: Settings, stage: str) -> None:
        self.producer, self.settings, self.stage = producer, settings, stage
        self.pending: list[asyncio.Future[Any]] = []

    async def send(self, topic: str, value: bytes | None, key: bytes | None = None,
                   partition: int | None = None) -> None:
        """Queue a record for ``topic`` (a base name: the prefix is added here)."""
        self.pending.append(await self.producer.send(self.settings.topic(topic), value=value, key=key,
                                                     partition=partition))

    async def dead_letter(self, event: Event | Any, reason: str, error_type: str,
                          feedback_id: str | None = None) -> None:
        """Send ``event`` to feedback.dlq: stage and reason in clear, its bytes sealed with the
        contact key (pipelines/dead_letters.py). ``event`` may be any Kafka record."""
        body = count_dead_letter(self.stage, reason, error_type, event.value, vault=contact_vault(self.settings),
                                 feedback_id=feedback_id, topic=event.topic, partition=event.partition,
                                 offset=event.offset)
        await self.send(FEEDBACK_DLQ.name, body, key=(feedback_id or "").encode() or None)

    async def flush(self) -> None:
        pending, self.pending = self.pending, []
        await asyncio.gather(*pending)


Handler = Callable[[list[Event], Outputs], Awaitable[None]]


async def send_dead_letter(producer: Any, settings: Settings, stage: str, record: Event | Any, reason: str,
                           error_type: str, feedback_id: str | None = None) -> None:
    """Dead-letter one record outside a handler's attempt and wait until Kafka has it."""
    out = Outputs(producer, settings, stage)
    await out.dead_letter(record, reason, error_type, feedback_id)
    await out.flush()


Fetch = Callable[..., Awaitable[dict[Any, list[Any]]]]


async def fetch_batch(getmany: Fetch, max_records: int, linger_s: float = 0.0, idle_wait_ms: int = 500,
                      clock: Callable[[], float] = time.monotonic) -> dict[Any, list[Any]]:
    """One batch of records by partition: adaptive batching.

    ``getmany(timeout_ms=, max_records=)`` is aiokafka's. The first call waits up to
    ``idle_wait_ms`` for anything; once a record is there, further calls take only what
    the consumer has already fetched (timeout 0), so an idle input is handled record by
    record without waiting and a batch is as large as the backlog, up to ``max_records``.
    With ``linger_s`` > 0 the worker waits at most that long after the first record for
    more (a flush by size or by a short deadline).
    """
    batch: dict[Any, list[Any]] = {}
    count = 0
    deadline: float | None = None
    while count < max_records:
        if deadline is None:
            timeout_ms = idle_wait_ms
        else:
            timeout_ms = max(0, int((deadline - clock()) * 1000))
        got = await getmany(timeout_ms=timeout_ms, max_records=max_records - count)
        n = sum(len(records) for records in got.values())
        for tp, records in got.items():
            batch.setdefault(tp, []).extend(records)
        count += n
        if deadline is None:
            if not n:
                break  # idle: nothing arrived within idle_wait_ms
            deadline = clock() + linger_s
        elif not n and clock() >= deadline:
            break  # nothing more already fetched, and no time left to wait for it
    return batch


class Abandoned(Exception):
    """The chunk in hand is given up uncommitted: the worker stops or lost the partition."""


async def settle(events: list[Event], attempt: Callable[[list[Event]], Awaitable[None]],
                 dead_letter: Callable[[Event, BaseException], Awaitable[None]],
                 wait_out: Callable[[BaseException, int], Awaitable[None]]) -> None:
    """Run ``attempt`` on ``events`` until it succeeds, isolating records that fail.

    ``wait_out(exc, n)`` is awaited after the n-th failure caused by a dependency and
    raises :class:`Abandoned` when the work must be given up. A failure of any other
    kind splits the events in halves, each settled on its own, so that only the records
    that fail alone reach ``dead_letter``.
    """
    transient = 0
    poison = 0
    while True:
        try:
            await attempt(events)
            return
        except Abandoned:
            raise
        except Exception as exc:  # noqa: BLE001 - classified below
            if is_transient(exc):
                transient += 1
                await wait_out(exc, transient)
                continue
            if len(events) > 1:
                # The exception's type only: its message may quote the resident's text.
                log.warning("chunk_failed_splitting", size=len(events), error=type(exc).__name__)
                mid = len(events) // 2
                await settle(events[:mid], attempt, dead_letter, wait_out)
                await settle(events[mid:], attempt, dead_letter, wait_out)
                return
            poison += 1
            if poison < POISON_ATTEMPTS:
                continue
            log.warning("record_failed", error=type(exc).__name__, offset=events[0].offset)
            while True:  # the dead letter itself must reach Kafka
                try:
                    await dead_letter(events[0], exc)
                    return
                except Exception as dl_exc:  # noqa: BLE001
                    if not is_transient(dl_exc):
                        raise
                    transient += 1
                    await wait_out(dl_exc, transient)


@dataclass
class WorkerSpec:
    """What makes one worker: its input, its contract and its handler."""

    stage: str
    topics: Sequence[str]  # base names
    handler: Handler
    # The event schema the decode step validates against; a mapping gives one per input
    # topic (base name -> schema) for a worker that reads more than one.
    schema: str | Mapping[str, str] | None
    chunk: int = 32  # records per handler call (and per commit)
    fetch_max: int = 500  # records per fetch (the largest batch under load)
    linger: float = 0.0  # seconds to wait for more after the first record (0: take what is there)
    warm_up: Callable[[], Awaitable[None]] | None = None  # before the first record (models)
    ready_check: Callable[[], Awaitable[bool]] | None = None  # dependencies, polled for /ready
    on_assigned: Callable[[set[TopicPartition]], Awaitable[None]] | None = None
    on_revoked: Callable[[set[TopicPartition]], Awaitable[None]] | None = None
    periodic: list[tuple[float, Callable[[], Awaitable[None]]]] = field(default_factory=list)
    close: Callable[[], Awaitable[None]] | None = None
    group: str | None = None  # consumer group; default <prefix>feedback-<stage>
    producer: Any | None = None  # when the handler also writes with it directly


def group_id(settings: Settings, stage: str) -> str:
    """The consumer group of a stage (KEDA and the lag alerts use the same name)."""
    return f"{settings.topic_prefix}feedback-{stage}"


class Worker(ConsumerRebalanceListener):
    """Runs one :class:`WorkerSpec` until ``stopping`` is set; see the module docstring."""

    def __init__(self, spec: WorkerSpec, settings: Settings, producer: Any | None = None) -> None:
        self.spec, self.settings = spec, settings
        self.producer = producer or spec.producer or aiokafka_producer(settings)
        self.consumer: AIOKafkaConsumer | None = None
        self.lock = asyncio.Lock()  # held for one attempt; a rebalance waits for it
        self.owned: set[TopicPartition] = set()
        self.stopping = asyncio.Event()
        self.running = False
        self.waiting_on: str | None = None  # the dependency failure being waited out
        self.dependencies_ok = True

    # --- readiness ------------------------------------------------------------------------

    def ready(self) -> bool:
        return self.running and self.waiting_on is None and self.dependencies_ok

    def _publish_ready(self) -> None:
        metrics.SERVICE_UP.labels(self.spec.stage).set(1 if self.ready() else 0)

    async def _check_dependencies(self) -> None:
        while not self.stopping.is_set():
            if self.spec.ready_check is not None:
                try:
                    self.dependencies_ok = bool(await asyncio.wait_for(self.spec.ready_check(), 10))
                except Exception:  # noqa: BLE001 - readiness reports, never raises
                    self.dependencies_ok = False
            self._publish_ready()
            await self._sleep(2.0)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.stopping.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    async def _every(self, interval: float, job: Callable[[], Awaitable[None]]) -> None:
        while not self.stopping.is_set():
            try:
                await job()
            except Exception as exc:  # noqa: BLE001 - a periodic job never stops the worker
                log.warning("periodic_job_failed", stage=self.spec.stage, error=type(exc).__name__)
            await self._sleep(interval)

    # --- rebalancing ----------------------------------------------------------------------

    async def on_partitions_revoked(self, revoked: Any) -> None:
        """Wait for the attempt in hand; then the partitions are no longer this worker's."""
        async with self.lock:
            self.owned -= set(revoked)
            if self.spec.on_revoked is not None:
                await self.spec.on_revoked(set(revoked))
        log.info("partitions_revoked", stage=self.spec.stage, partitions=sorted(tp.partition for tp in revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        async with self.lock:
            self.owned |= set(assigned)
            if self.spec.on_assigned is not None:
                await self.spec.on_assigned(set(assigned))
        log.info("partitions_assigned", stage=self.spec.stage, partitions=sorted(tp.partition for tp in assigned))

    # --- one partition's records ----------------------------------------------------------

    async def _wait_out(self, tp: TopicPartition, exc: BaseException, n: int) -> None:
        """Back off while a dependency is down, polling so the group keeps this member."""
        self.waiting_on = type(exc).__name__
        self._publish_ready()
        metrics.DEPENDENCY_WAITS.labels(self.spec.stage, type(exc).__name__).inc()
        delay = min(BACKOFF_START_S * 2 ** (n - 1), BACKOFF_MAX_S)
        log.warning("dependency_unavailable_waiting", stage=self.spec.stage, attempt=n, delay_s=delay,
                    error=type(exc).__name__, detail=str(exc)[:300])
        assert self.consumer is not None
        paused = set(self.consumer.assignment())
        self.consumer.pause(*paused)
        try:
            await self._idle(delay)
            # While Kafka itself is away, a retry would only queue another batch that aiokafka
            # keeps chasing a leader for: wait until the cluster answers again.
            while is_kafka_error(exc) and not self.stopping.is_set() and not await self._kafka_answers():
                await self._idle(1.0)
        finally:
            self.consumer.resume(*(paused & set(self.consumer.assignment())))
        if self.stopping.is_set() or tp not in self.owned:
            raise Abandoned()

    async def _idle(self, seconds: float) -> None:
        """Poll the paused consumer for ``seconds``: nothing comes back, but the group keeps
        this member (max.poll.interval.ms)."""
        assert self.consumer is not None
        deadline = time.monotonic() + seconds
        while not self.stopping.is_set() and time.monotonic() < deadline:
            await self.consumer.getmany(timeout_ms=int(min(500, max(1, (deadline - time.monotonic()) * 1000))))

    async def _kafka_answers(self) -> bool:
        try:
            await self.producer.client.fetch_all_metadata()
            return True
        except Exception:  # noqa: BLE001 - any failure means "not yet"
            return False

    async def _attempt(self, tp: TopicPartition, events: list[Event]) -> None:
        async with self.lock:
            if self.stopping.is_set() or tp not in self.owned:
                raise Abandoned()
            out = Outputs(self.producer, self.settings, self.spec.stage)
            await self.spec.handler(events, out)
            await out.flush()
        if self.waiting_on is not None:
            log.info("dependency_back", stage=self.spec.stage, after=self.waiting_on)
            self.waiting_on = None
            self._publish_ready()

    async def _dead_letter(self, event: Event | Any, exc: BaseException | None = None,
                           letter: DeadLetter | None = None) -> None:
        if letter is None:
            assert exc is not None
            fid = (event.body or {}).get("feedback_id") if isinstance(event, Event) else None
            letter = DeadLetter(f"{type(exc).__name__}: {exc}"[:2000], type(exc).__name__,
                                fid if isinstance(fid, str) else None)
        await send_dead_letter(self.producer, self.settings, self.spec.stage, event, letter.reason,
                               letter.error_type, letter.feedback_id)

    async def _commit(self, tp: TopicPartition, offset: int) -> None:
        assert self.consumer is not None
        n = 0
        while True:
            async with self.lock:
                if tp not in self.owned:
                    raise Abandoned()  # its next owner redoes the chunk: side effects are idempotent
                try:
                    await self.consumer.commit({tp: offset})
                    return
                except Exception as exc:  # noqa: BLE001
                    if not is_transient(exc):
                        # e.g. CommitFailedError: the group moved on while we worked
                        log.warning("commit_failed", stage=self.spec.stage, partition=tp.partition,
                                    error=type(exc).__name__)
                        raise Abandoned() from exc
                    error = exc
            n += 1
            await self._wait_out(tp, error, n)

    async def _process(self, tp: TopicPartition, records: list[Any]) -> None:
        for start in range(0, len(records), self.spec.chunk):
            chunk = records[start:start + self.spec.chunk]
            started = time.perf_counter()
            now_ms = time.time() * 1000
            for record in chunk:  # the record's CreateTime: when its producer wrote it
                metrics.QUEUE_SECONDS.labels(self.spec.stage).observe(max(0.0, now_ms - record.timestamp) / 1000)
            events: list[Event] = []
            for record in chunk:
                decoded = decode(record, self._schema(record.topic))
                if isinstance(decoded, DeadLetter):
                    await settle([record], lambda _r, rec=record, d=decoded: self._dead_letter(rec, letter=d),
                                 self._never, lambda e, n: self._wait_out(tp, e, n))
                else:
                    events.append(decoded)
            if events:
                await settle(events, lambda evs: self._attempt(tp, evs), self._dead_letter,
                             lambda e, n: self._wait_out(tp, e, n))
            await self._commit(tp, chunk[-1].offset + 1)
            metrics.BATCH_SIZE.labels(self.spec.stage).observe(len(chunk))
            metrics.STAGE_SECONDS.labels(self.spec.stage).observe(time.perf_counter() - started)

    def _schema(self, topic: str) -> str | None:
        """The schema of records from ``topic`` (a full name, prefix included)."""
        schema = self.spec.schema
        if schema is None or isinstance(schema, str):
            return schema
        return schema[topic.removeprefix(self.settings.topic_prefix)]

    async def _never(self, event: Any, exc: BaseException) -> None:
        """A dead letter that Kafka refuses for good (not for being down) cannot be
        dead-lettered again: say where the record lies so it can be replayed by hand."""
        log.critical("dead_letter_refused", stage=self.spec.stage, topic=event.topic, partition=event.partition,
                     offset=event.offset, error=type(exc).__name__, detail=str(exc)[:300])

    # --- the loop -------------------------------------------------------------------------

    async def run(self) -> None:
        """Consume until ``stopping`` is set."""
        spec = self.spec
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap, group_id=spec.group or group_id(self.settings, spec.stage),
            enable_auto_commit=False, auto_offset_reset="earliest", max_partition_fetch_bytes=4 * 1024 * 1024,
            # A dead member holds its partitions for session_timeout_ms; under the 40 s request
            # time-out, so the JoinGroup that waits for it does not time out first.
            session_timeout_ms=30_000, heartbeat_interval_ms=3_000, max_poll_interval_ms=600_000,
            **kafka_security(self.settings))
        if spec.warm_up is not None:
            await spec.warm_up()
        gc.freeze()  # the models and modules loaded so far stay: keep them out of full GC passes
        await self.producer.start()
        side_tasks: list[asyncio.Task[None]] = []
        try:
            self.consumer.subscribe([self.settings.topic(t) for t in spec.topics], listener=self)
            await self.consumer.start()
            try:
                self.running = True
                side_tasks.append(asyncio.create_task(self._check_dependencies()))
                side_tasks += [asyncio.create_task(self._every(i, job)) for i, job in spec.periodic]
                log.info("worker_started", service=spec.stage)
                while not self.stopping.is_set():
                    batch = await fetch_batch(self.consumer.getmany, spec.fetch_max, spec.linger)
                    for tp, records in batch.items():
                        if self.stopping.is_set():
                            break
                        try:
                            await self._process(tp, records)
                        except Abandoned:
                            # Not committed: whoever owns the partition next (or this worker
                            # after a restart) starts from the last commit. Seek back in case
                            # the partition is still ours, so nothing after it is skipped.
                            if tp in self.owned and not self.stopping.is_set():
                                await self._seek_committed(tp)
            finally:
                self.running = False
                self._publish_ready()
                for task in side_tasks:
                    task.cancel()
                await asyncio.gather(*side_tasks, return_exceptions=True)
                await self.consumer.stop()  # leaves the group: the partitions move on at once
        finally:
            await self.producer.stop()
            if spec.close is not None:
                await spec.close()

    async def _seek_committed(self, tp: TopicPartition) -> None:
        assert self.consumer is not None
        committed = await self.consumer.committed(tp)
        if committed is None:
            await self.consumer.seek_to_beginning(tp)
        else:
            self.consumer.seek(tp, committed)


async def serve(spec: WorkerSpec, settings: Settings) -> None:
    """Run a worker with /health, /ready and /metrics until SIGTERM or SIGINT."""
    worker = Worker(spec, settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stopping.set)
    probes = ProbeServer(spec.stage, settings.host, service_port(spec.stage, settings), worker.ready)
    await probes.start()
    try:
        await worker.run()
    finally:
        log.info("service_stopping", service=spec.stage)
        await probes.stop()


def run_worker(build: Callable[[Settings], WorkerSpec], settings: Settings, stage: str) -> None:
    """The entry point of a worker process (the spec is built inside the event loop: the
    Kafka and Elasticsearch clients bind to it)."""
    configure_logging(settings.log_level, stage)

    async def main() -> None:
        await serve(build(settings), settings)

    asyncio.run(main())
