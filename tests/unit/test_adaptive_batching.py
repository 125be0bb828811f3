"""Adaptive batching in the worker runtime (services.workers.runtime.fetch_batch), with a fake
consumer whose buffer and clock the test controls: no Kafka, no timing."""
from __future__ import annotations

import asyncio
from typing import Any

from services.workers.runtime import fetch_batch


class FakeConsumer:
    """aiokafka's getmany over a scripted buffer: ``arrivals`` maps a clock time to the
    records that reach the consumer then; a call with a timeout advances the clock to the
    next arrival within it (or by the whole timeout)."""

    def __init__(self, arrivals: dict[float, list[tuple[str, int]]]) -> None:
        self.now = 0.0
        self.arrivals = sorted(arrivals.items())
        self.buffer: list[tuple[str, int]] = []
        self.calls: list[int] = []

    def clock(self) -> float:
        return self.now

    def _arrive(self) -> None:
        while self.arrivals and self.arrivals[0][0] <= self.now:
            self.buffer.extend(self.arrivals.pop(0)[1])

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[str, list[Any]]:
        self.calls.append(timeout_ms)
        self._arrive()
        if not self.buffer:
            upcoming = [t for t, _ in self.arrivals if t <= self.now + timeout_ms / 1000]
            self.now = upcoming[0] if upcoming else self.now + timeout_ms / 1000
            self._arrive()
        taken, self.buffer = self.buffer[:max_records], self.buffer[max_records:]
        out: dict[str, list[Any]] = {}
        for tp, offset in taken:
            out.setdefault(tp, []).append(offset)
        return out


def run(consumer: FakeConsumer, max_records: int, linger_s: float = 0.0) -> dict[str, list[Any]]:
    return asyncio.run(fetch_batch(consumer.getmany, max_records, linger_s, clock=consumer.clock))


def test_an_idle_input_hands_over_the_first_record_at_once():
    consumer = FakeConsumer({0.2: [("p0", 1)], 5.0: [("p0", 2)]})
    assert run(consumer, max_records=32) == {"p0": [1]}
    # it waited for the first record only, then asked for what was already there (timeout 0)
    assert consumer.calls == [500, 0]
    assert consumer.now == 0.2


def test_under_load_the_batch_is_what_is_already_queued_up_to_the_maximum():
    backlog = [("p0", i) for i in range(10)] + [("p1", i) for i in range(10)]
    consumer = FakeConsumer({0.0: backlog})
    batch = run(consumer, max_records=15)
    assert sum(len(v) for v in batch.values()) == 15
    assert consumer.now == 0.0  # never waited to fill it
    rest = run(consumer, max_records=15)
    assert sum(len(v) for v in rest.values()) == 5


def test_records_fetched_in_several_pieces_are_gathered_without_waiting():
    consumer = FakeConsumer({0.0: [("p0", 1)]})
    # a second piece is already in the buffer after the first call returned
    original = consumer.getmany

    async def two_pieces(timeout_ms: int, max_records: int) -> dict[str, list[Any]]:
        out = await original(timeout_ms, max_records)
        if len(consumer.calls) == 1:
            consumer.buffer.extend([("p1", 7), ("p1", 8)])
        return out

    batch = asyncio.run(fetch_batch(two_pieces, 32, clock=consumer.clock))
    assert batch == {"p0": [1], "p1": [7, 8]}
    assert consumer.calls == [500, 0, 0]


def test_nothing_arrives_returns_an_empty_batch_after_the_idle_wait():
    consumer = FakeConsumer({})
    assert run(consumer, max_records=32) == {}
    assert consumer.calls == [500]


def test_linger_waits_a_short_deadline_for_more_then_flushes():
    consumer = FakeConsumer({0.0: [("p0", 1)], 0.03: [("p0", 2)], 0.5: [("p0", 3)]})
    batch = run(consumer, max_records=500, linger_s=0.05)
    assert batch == {"p0": [1, 2]}  # the record at 0.5 s is past the deadline
    assert consumer.now <= 0.05 + 1e-9


def test_linger_flushes_by_size_before_the_deadline():
    consumer = FakeConsumer({0.0: [("p0", i) for i in range(3)], 0.01: [("p0", i) for i in range(3, 9)]})
    batch = run(consumer, max_records=5, linger_s=10.0)
    assert batch == {"p0": [0, 1, 2, 3, 4]}
    assert consumer.now == 0.01
