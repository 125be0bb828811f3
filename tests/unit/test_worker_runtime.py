"""The worker runtime's pure parts, without a broker: decoding records, isolating the
record that fails, waiting out a dependency without dead-lettering anything."""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import pytest
from elasticsearch import ConnectionError as ESConnectionError

from services.workers.faults import DependencyUnavailable, is_transient
from services.workers.runtime import Abandoned, DeadLetter, Event, decode, settle


@dataclass
class Rec:
    value: bytes | None
    key: bytes | None = b"k"
    topic: str = "t"
    partition: int = 0
    offset: int = 0


def ev(i: int) -> Event:
    return Event("t", 0, i, b"k", b"{}", {"n": i})


def run(coro):
    return asyncio.run(coro)


def test_decode_tells_events_tombstones_and_dead_letters_apart():
    assert decode(Rec(None), "feedback.received").body is None
    bad_json = decode(Rec(b"{nope"), None)
    assert isinstance(bad_json, DeadLetter) and bad_json.error_type == "invalid_json"
    not_object = decode(Rec(b"[1, 2]"), None)
    assert isinstance(not_object, DeadLetter) and "not a JSON object" in not_object.reason
    wrong = decode(Rec(json.dumps({"schema_version": 1, "feedback_id": "f-1"}).encode()), "feedback.received")
    assert isinstance(wrong, DeadLetter) and wrong.error_type == "schema_violation"
    assert "unit" in wrong.reason and wrong.feedback_id == "f-1"
    assert decode(Rec(b'{"a": 1}'), None).body == {"a": 1}


def test_one_poison_record_in_a_batch_is_dead_lettered_alone():
    handled: list[int] = []
    dead: list[int] = []

    async def attempt(events):
        if any(e.body["n"] == 13 for e in events):
            raise ValueError("cannot handle 13")
        handled.extend(e.body["n"] for e in events)

    async def dead_letter(event, exc):
        dead.append(event.body["n"])

    async def wait_out(exc, n):
        raise AssertionError("no dependency is down")

    run(settle([ev(i) for i in range(32)], attempt, dead_letter, wait_out))
    assert dead == [13]
    assert sorted(handled) == [i for i in range(32) if i != 13]


def test_a_dependency_outage_is_waited_out_and_nothing_is_dead_lettered():
    calls = {"n": 0}
    waits: list[int] = []

    async def attempt(events):
        calls["n"] += 1
        if calls["n"] <= 5:
            raise ESConnectionError("connection refused")

    async def dead_letter(event, exc):
        raise AssertionError("an outage must never dead-letter")

    async def wait_out(exc, n):
        waits.append(n)

    run(settle([ev(i) for i in range(8)], attempt, dead_letter, wait_out))
    assert waits == [1, 2, 3, 4, 5] and calls["n"] == 6


def test_abandoning_stops_at_once_without_dead_letters():
    async def attempt(events):
        raise DependencyUnavailable("smtp down")

    async def dead_letter(event, exc):
        raise AssertionError("unreachable")

    async def wait_out(exc, n):
        raise Abandoned()

    with pytest.raises(Abandoned):
        run(settle([ev(1), ev(2)], attempt, dead_letter, wait_out))


def test_a_single_failure_that_goes_away_is_not_dead_lettered():
    calls = {"n": 0}

    async def attempt(events):
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyError("flaky once")

    async def dead_letter(event, exc):
        raise AssertionError("retried before dead-lettering")

    async def wait_out(exc, n):
        raise AssertionError("not a dependency")

    run(settle([ev(1)], attempt, dead_letter, wait_out))
    assert calls["n"] == 2


def test_transient_and_permanent_failures_are_told_apart():
    from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, RecordTooLargeError
    from elasticsearch import ApiError, BadRequestError
    from elastic_transport import ApiResponseMeta, HttpHeaders

    def meta(status):
        return ApiResponseMeta(status=status, http_version="1.1", headers=HttpHeaders(), duration=0.0, node=None)

    assert is_transient(KafkaConnectionError()) and is_transient(KafkaTimeoutError())
    assert is_transient(ESConnectionError("down")) and is_transient(ConnectionRefusedError())
    assert is_transient(ApiError("busy", meta(503), {})) and is_transient(ApiError("slow down", meta(429), {}))
    assert not is_transient(BadRequestError("bad doc", meta(400), {}))
    assert not is_transient(RecordTooLargeError()) and not is_transient(ValueError("bad input"))
    assert not is_transient(FileNotFoundError("model missing"))


def test_a_library_message_repeated_thousands_of_times_is_logged_once_per_window():
    import logging

    from services.logs import RepeatFilter

    f = RepeatFilter(window_s=60)
    flood = [logging.LogRecord("aiokafka", logging.ERROR, __file__, 1, "Unable connect to node %s", (1,), None)
             for _ in range(5000)]
    other = logging.LogRecord("aiokafka", logging.ERROR, __file__, 1, "Unable to update metadata", (), None)
    assert sum(f.filter(r) for r in flood) == 1
    assert f.filter(other)
