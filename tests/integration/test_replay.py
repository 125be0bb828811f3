"""`feedback replay` and `feedback dlq redrive` against the real Kafka."""
from __future__ import annotations

import json

import pytest
from kafka import KafkaProducer

from services.adapters.contacts_store import contact_vault
from services.adapters.kafka_io import dead_letter as sealed_letter
from services.ops.replay import redrive, replay

pytestmark = pytest.mark.integration


def produce(settings, base: str, items: list[tuple[bytes, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    for key, value in items:
        producer.send(settings.topic(base), key=key, value=value)
    producer.flush()
    producer.close()


def test_replay_copies_every_record_once_with_its_key(pipeline_env, topic_records):
    _, settings = pipeline_env
    items = [(f"k{i}".encode(), json.dumps({"n": i}).encode()) for i in range(7)]
    produce(settings, "feedback.enriched", items)
    report = replay(settings, "feedback.enriched")
    assert report.copied == 7
    after = topic_records(settings, "feedback.enriched")
    assert sorted(after) == sorted(items * 2)
    with pytest.raises(ValueError, match="unknown topic"):
        replay(settings, "no.such.topic")


def test_redrive_puts_dead_letters_back_on_their_input_once(pipeline_env, topic_records):
    _, settings = pipeline_env
    original = json.dumps({"feedback_id": "abc", "text": "x"}).encode()

    def dead_letter(*args, **kwargs):  # noqa: ANN002, ANN003
        return sealed_letter(*args, vault=contact_vault(settings), **kwargs)

    letters = [dead_letter("enricher", "model crashed", "RuntimeError", original, feedback_id="abc"),
               dead_letter("ingest", "bad body", "validation_failed", b"{}"),
               dead_letter("indexer", "es down", "ConnectionError", b'{"feedback_id": "def"}'),
               dead_letter("indexer", "garbage", "JSONDecodeError", b"not json")]
    produce(settings, "feedback.dlq", [(None, json.dumps(d).encode()) for d in letters])
    assert redrive(settings, stage="enricher").copied == 1
    assert topic_records(settings, "feedback.received") == [(b"abc", original)]
    assert redrive(settings, stage="enricher").copied == 0  # at most once
    report = redrive(settings)  # the indexer's letters, still waiting
    assert report.copied == 1 and report.skipped == {"no feedback_id to key it by": 1}
    assert (b"def", b'{"feedback_id": "def"}') in topic_records(settings, "feedback.enriched")
    with pytest.raises(ValueError, match="stage"):
        redrive(settings, stage="ingest")


def test_redrive_stops_on_a_dead_letter_no_contact_key_opens(pipeline_env, topic_records):
    from cryptography.fernet import Fernet

    from pipelines.vault import ContactVault

    _, settings = pipeline_env
    retired = ContactVault([Fernet.generate_key().decode()])
    letter = sealed_letter("enricher", "boom", "RuntimeError", b'{"feedback_id": "ghi"}', vault=retired)
    produce(settings, "feedback.dlq", [(None, json.dumps(letter).encode())])
    with pytest.raises(ValueError, match="contact_keys"):
        redrive(settings, stage="enricher")
    assert (b"ghi", b'{"feedback_id": "ghi"}') not in topic_records(settings, "feedback.received")
