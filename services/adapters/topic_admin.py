"""Create and describe the pipeline's topics from services.topics."""
from __future__ import annotations

from dataclasses import dataclass

from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import TopicAlreadyExistsError
from tenacity import retry, stop_after_delay, wait_exponential

from services.adapters.kafka_io import admin_client
from services.settings import Settings
from services.topics import ALL_TOPICS, topic_config


@dataclass(frozen=True)
class TopicResult:
    name: str
    created: bool
    partitions: int


@retry(stop=stop_after_delay(60), wait=wait_exponential(max=5), reraise=True)
def create_topics(settings: Settings) -> list[TopicResult]:
    """Create every topic with its partitions and configs (services/topics.py, the erasure lag
    from settings). An existing topic keeps its partitions, but its configs are set to these
    (incrementally: other keys stay), so a topic made before a config was added gets it."""
    admin = admin_client(settings)
    try:
        existing = set(admin.list_topics())
        results: list[TopicResult] = []
        for spec in ALL_TOPICS:
            name = settings.topic(spec.name)
            config = topic_config(spec, settings.erasure_compaction_lag_ms)
            if name in existing:
                admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name, configs=config)],
                                    incremental=True)
                results.append(TopicResult(name, False, spec.partitions))
                continue
            try:
                admin.create_topics([NewTopic(name, spec.partitions, settings.topic_replication,
                                              topic_configs=config)])
                results.append(TopicResult(name, True, spec.partitions))
            except TopicAlreadyExistsError:
                results.append(TopicResult(name, False, spec.partitions))
        return results
    finally:
        admin.close()


def delete_topics(settings: Settings) -> list[str]:
    """Delete every topic of services.topics under ``settings``' prefix that exists (a bench's or
    a test's throwaway prefix; never run it on a county's). Returns the deleted names."""
    if not settings.topic_prefix:
        raise ValueError("refusing to delete the unprefixed production topics")
    admin = admin_client(settings)
    try:
        existing = set(admin.list_topics())
        names = [settings.topic(spec.name) for spec in ALL_TOPICS if settings.topic(spec.name) in existing]
        if names:
            admin.delete_topics(names)
        return names
    finally:
        admin.close()
