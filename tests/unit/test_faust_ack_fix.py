"""services/faust_fixes.py: a message faust discards as stale is not acked (so not
committed), while a processed message still is. No broker: faust's consumer object
keeps its ack bookkeeping in memory until it commits."""
from __future__ import annotations

import faust
from faust.transport.consumer import ConsumerMessage
from faust.types import TP

from services.faust_fixes import install_stale_ack_fix

TOPIC = "closure.notifications"


def message(offset: int, generation: int, *, tracked: bool) -> ConsumerMessage:
    m = ConsumerMessage(TOPIC, 0, offset, 0.0, 0, None, b"k", b"v", None, generation_id=generation)
    m.tracked = tracked
    return m


def test_only_unprocessed_stale_messages_lose_their_ack() -> None:
    install_stale_ack_fix()
    app = faust.App("faust-ack-fix-test", broker="kafka://127.0.0.1:1", store="memory://")
    app.topics._acking_topics.add(TOPIC)  # what the conductor does when an agent subscribes
    consumer = app.consumer
    app.consumer_generation_id = 2
    tp = TP(TOPIC, 0)

    assert consumer.ack(message(0, 2, tracked=True)) is True  # processed, current generation
    assert consumer.ack(message(1, 1, tracked=False)) is False  # discarded: older generation
    app.flow_control.suspend()
    assert consumer.ack(message(2, 2, tracked=False)) is False  # discarded: rebalance in progress
    assert consumer.ack(message(3, 2, tracked=True)) is True  # processed, finished during the rebalance
    assert list(consumer._acked[tp]) == [0, 3]
