"""Work-arounds for faust-streaming on aiokafka that can lose events around a restart.

Both found by tests/e2e/test_notifier_crash.py (a notifier SIGKILLed and restarted with
a backlog) while the notifier was still a faust app: some notifications were never
delivered yet their offsets were committed. ``install_faust_fixes()`` applies both;
``make_app`` calls it for every faust worker. (The notifier now commits its own offsets on
plain aiokafka: docs/closure-loop.md.)

1. ``AIOKafkaConsumer.seek_to_committed`` skips a partition whose committed offset is
   missing or 0 (``if offset and offset > 0``). faust calls it after a rebalance to undo
   what was fetched during table recovery and dropped by flow control; for such a
   partition the position stayed past the dropped records. The fix seeks those
   partitions to offset 0, or to the beginning when nothing is committed, which is what
   ``auto_offset_reset=earliest`` (every worker here) means.
2. A stream that pulls a message while flow control is off (a rebalance or recovery in
   progress) or from an older consumer generation discards it as stale and then *acks*
   it "so that the lag does not grow" (faust/streams.py). That ack lets the commit move
   past a message nobody processed. The fix ignores the ack of a message that is stale
   and was never handed to the agent (faust marks a message ``tracked`` when the stream
   takes it for processing; a discarded one is not): it stays uncommitted and is fetched
   again after faust seeks back to the committed offset. Acks of processed messages,
   also those finished during a rebalance or shutdown, are left alone.
"""
from __future__ import annotations

from typing import Any

from services.logs import get_logger

log = get_logger("faust_fixes")
_installed: set[str] = set()


def install_seek_to_committed_fix() -> None:
    """Patch AIOKafkaConsumer.seek_to_committed in this process (idempotent)."""
    if "seek" in _installed:
        return
    from aiokafka.consumer.consumer import AIOKafkaConsumer

    original = AIOKafkaConsumer.seek_to_committed

    async def seek_to_committed(self: Any, *partitions: Any) -> dict[Any, int | None]:
        committed = await original(self, *partitions)
        for tp, offset in committed.items():
            if offset == 0:
                self._fetcher.seek_to(tp, 0)
        uncommitted = [tp for tp, offset in committed.items() if offset is None or offset < 0]
        if uncommitted:
            await self.seek_to_beginning(*uncommitted)
        return committed

    AIOKafkaConsumer.seek_to_committed = seek_to_committed
    _installed.add("seek")


def discarded_unprocessed(app: Any, message: Any) -> bool:
    """Whether ``message`` is being acked by faust's stale-message path: never taken for
    processing, and flow control off or from an older consumer generation."""
    if message.tracked:
        return False
    generation = getattr(message, "generation_id", None)
    return not app.flow_control.is_active() or (generation is not None
                                                 and generation != app.consumer_generation_id)


def install_stale_ack_fix() -> None:
    """Patch faust's Consumer.ack to ignore acks of discarded stale messages (idempotent)."""
    if "ack" in _installed:
        return
    from faust.transport.consumer import Consumer
    from faust.types.tuples import ack_lock

    original = Consumer.ack

    def ack(self: Any, message: Any) -> bool:
        if self.app.topics.acks_enabled_for(message.topic) and discarded_unprocessed(self.app, message):
            with ack_lock:
                message.acked = True
                self._unacked_messages.discard(message)  # nothing waits for it at shutdown
            log.info("stale_message_not_acked", topic=message.topic, partition=message.partition,
                     offset=message.offset)
            return False
        return original(self, message)

    Consumer.ack = ack
    _installed.add("ack")


def install_faust_fixes() -> None:
    """Both fixes; call before the app starts consuming."""
    install_seek_to_committed_fix()
    install_stale_ack_fix()
