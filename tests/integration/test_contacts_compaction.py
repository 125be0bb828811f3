"""respondent.contacts as `feedback topics create` makes it: the production compaction configs
reach the broker, and an erased contact (a tombstone) is really gone from the topic.

The production lag (a day) is too long to wait for in a test, so it comes from one setting,
``FEEDBACK_ERASURE_COMPACTION_LAG_MS``: the first test proves that its production value is
what the broker has, the second sets a short one the same way ops would and watches the
erased contact disappear. Nothing else about the topic is test-only.
"""
from __future__ import annotations

import time
import uuid

import pytest
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from services.adapters.contacts_store import partition_for, producer, read_topic
from services.adapters.topic_admin import create_topics
from services.settings import Settings
from services.topics import DAY_MS, FEEDBACK_RECEIVED, NOTIFICATION_LOG, RESPONDENT_CONTACTS, topic_config

pytestmark = pytest.mark.integration


def broker_configs(settings: Settings, base: str) -> dict[str, str]:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        topic = settings.topic(base)
        (by_name,) = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)]).values()
        return {k: (v["value"] if isinstance(v, dict) else v) for k, v in by_name[topic].items()}
    finally:
        admin.close()


def test_production_compaction_configs_reach_the_broker(pipeline_env):
    _, settings = pipeline_env  # topics made by create_topics with every default setting
    assert settings.erasure_compaction_lag_ms == DAY_MS
    for spec in (RESPONDENT_CONTACTS, FEEDBACK_RECEIVED, NOTIFICATION_LOG):
        on_broker = broker_configs(settings, spec.name)
        for key, value in topic_config(spec, settings.erasure_compaction_lag_ms).items():
            assert on_broker[key] == value, (spec.name, key)
    # The same guarantees as the feedback topics.
    contacts, feedback = (broker_configs(settings, s.name) for s in (RESPONDENT_CONTACTS, FEEDBACK_RECEIVED))
    for key in ("max.compaction.lag.ms", "segment.ms", "min.compaction.lag.ms", "delete.retention.ms"):
        assert contacts[key] == feedback[key], key
    assert contacts["max.compaction.lag.ms"] == str(DAY_MS)


def test_an_existing_topic_gets_the_configs_it_lacks(pipeline_env):
    env, _ = pipeline_env
    settings = _settings(env, "compact-existing", lag_ms=DAY_MS)
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:  # as it was made before max.compaction.lag.ms was in services/topics.py
        from kafka.admin import NewTopic

        admin.create_topics([NewTopic(settings.topic(RESPONDENT_CONTACTS.name), RESPONDENT_CONTACTS.partitions, 1,
                                      topic_configs={"cleanup.policy": "compact"})])
    finally:
        admin.close()
    create_topics(settings)
    assert broker_configs(settings, RESPONDENT_CONTACTS.name)["max.compaction.lag.ms"] == str(DAY_MS)


def _settings(env: dict[str, str], name: str, lag_ms: int) -> Settings:
    """Settings as a deployment reads them from FEEDBACK_* variables, on topics of their own."""
    values = {**env, "FEEDBACK_TOPIC_PREFIX": f"{name}-{uuid.uuid4().hex[:6]}.",
              "FEEDBACK_ERASURE_COMPACTION_LAG_MS": str(lag_ms)}
    return Settings(**{k.removeprefix("FEEDBACK_").lower(): v for k, v in values.items()
                       if k.startswith("FEEDBACK_")})


def test_an_erased_contact_is_gone_from_the_topic(pipeline_env):
    env, _ = pipeline_env
    settings = _settings(env, "compact-erase", lag_ms=2000)
    create_topics(settings)  # the production path: `feedback topics create`
    assert broker_configs(settings, RESPONDENT_CONTACTS.name)["max.compaction.lag.ms"] == "2000"

    topic = settings.topic(RESPONDENT_CONTACTS.name)
    ref = f"r_{uuid.uuid4().hex[:24]}".encode()
    part = partition_for(ref, RESPONDENT_CONTACTS.partitions)
    prod = producer(settings)
    try:
        prod.send(topic, key=ref, value=b'{"contact_ciphertext": "first"}', partition=part)
        prod.send(topic, key=ref, value=b'{"contact_ciphertext": "second"}', partition=part)
        prod.send(topic, key=ref, value=None, partition=part)  # the erasure's tombstone
        prod.flush(30)

        def values_of_ref() -> list[bytes]:
            records, _ = read_topic(settings, topic, [part])
            return [r.value for r in records if r.key == ref and r.value is not None]

        assert len(values_of_ref()) == 2
        deadline = time.monotonic() + 180  # generous: the cleaner shares two cores with the suite
        while values_of_ref():
            assert time.monotonic() < deadline, "the erased contact is still on respondent.contacts"
            # A segment is rolled (and so can be cleaned) only when a record is appended after
            # segment.ms: other respondents' writes do that in production.
            prod.send(topic, key=b"r_someone-else", value=b"{}", partition=part)
            prod.flush(30)
            time.sleep(1)
    finally:
        prod.close()
