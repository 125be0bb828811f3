"""Create and describe the pipeline's topics from services.topics."""
from __future__ import annotations

from dataclasses import dataclass

from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError
from tenacity import retry, stop_after_delay, wait_exponential

from services.adapters.kafka_io import admin_client
from services.settings import Settings
from services.topics import ALL_TOPICS


@dataclass(frozen=True)
class TopicResult:
    name: str
    created: bool
    partitions: int


@retry(stop=stop_after_delay(60), wait=wait_exponential(max=5), reraise=True)
def create_topics(settings: Settings) -> list[TopicResult]:
    """Create every topic with its partitions and configs; existing ones are left as they are."""
    admin = admin_client(settings)
    try:
        existing = set(admin.list_topics())
        results: list[TopicResult] = []
        for spec in ALL_TOPICS:
            name = settings.topic(spec.name)
            if name in existing:
                results.append(TopicResult(name, False, spec.partitions))
                continue
            try:
                admin.create_topics([NewTopic(name, spec.partitions, settings.topic_replication,
                                              topic_configs=dict(spec.config))])
                results.append(TopicResult(name, True, spec.partitions))
            except TopicAlreadyExistsError:
                results.append(TopicResult(name, False, spec.partitions))
        return results
    finally:
        admin.close()
