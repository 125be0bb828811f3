"""What the benches leave behind on a stack they reused: nothing. Each run makes its own topics
(and, for `bench e2e`, its own index) under a run prefix; this removes them."""
from __future__ import annotations

import sys

from services.adapters.es import drop_index, es_client
from services.adapters.topic_admin import delete_topics
from services.settings import Settings


def drop_run(settings: Settings, index: bool) -> None:
    """Delete the run's topics and (``index``) its index. A failure is reported, not raised: it
    must not hide why the bench itself stopped."""
    try:
        delete_topics(settings)
        if index:
            drop_index(es_client(settings), settings.index_alias)
    except Exception as exc:  # noqa: BLE001 - clean-up is best effort; the run's prefix names what is left
        print(f"warning: could not remove the run's topics/index ({type(exc).__name__}: {exc}); they are "
              f"named {settings.topic_prefix}* / {settings.index_alias}", file=sys.stderr)
