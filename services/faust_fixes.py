"""A work-around for faust-streaming on aiokafka that can lose events after a restart.

After a rebalance faust seeks every assigned partition to its committed offset through
``AIOKafkaConsumer.seek_to_committed``, which skips a partition whose committed offset
is missing or 0 (``if offset and offset > 0``). Records of such a partition that were
fetched while the worker recovered its tables, and dropped by faust's flow control,
are then never delivered: the position has already moved past them. A notifier
restarted before it had committed anything lost notifications this way
(tests/e2e/test_notifier_crash.py). The fix seeks those partitions to offset 0, or to
the beginning when nothing is committed, which is what ``auto_offset_reset=earliest``
(every worker here) means for a partition without a committed offset. ``make_app``
installs it for every worker.
"""
from __future__ import annotations

from typing import Any

_installed = False


def install_seek_to_committed_fix() -> None:
    """Patch AIOKafkaConsumer.seek_to_committed in this process (idempotent)."""
    global _installed
    if _installed:
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
    _installed = True
