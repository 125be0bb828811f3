"""services/adapters/topic_admin.py: the guard on deleting topics (no broker needed for it)."""
import pytest

from services.adapters.topic_admin import delete_topics
from services.settings import Settings


def test_delete_topics_refuses_the_unprefixed_production_topics() -> None:
    # Raised before any connection: the bootstrap below answers nothing.
    with pytest.raises(ValueError, match="unprefixed production topics"):
        delete_topics(Settings(topic_prefix="", kafka_bootstrap="127.0.0.1:1"))
