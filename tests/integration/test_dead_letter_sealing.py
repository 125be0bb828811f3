"""feedback.dlq on the real Kafka keeps no contact details or text in clear, and
`feedback dlq redrive` opens the sealed bytes and puts them back to be processed again."""
from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from kafka import KafkaConsumer, KafkaProducer

from pipelines.dead_letters import unseal
from services.adapters.contacts_store import contact_vault
from services.ops.replay import redrive

pytestmark = pytest.mark.integration

EMAIL, PHONE = "aino.virtanen@example.fi", "+358 40 765 4321"
TEXT = "Odotin päivystyksessä seitsemän tuntia ilman että kukaan kertoi mitään"
SECRETS = (EMAIL, PHONE, "aino.virtanen", "765 4321", TEXT, "seitsemän tuntia")


def _raw(settings, base: str) -> list[Any]:
    """Every record of a topic, raw (key, value, offset)."""
    consumer = KafkaConsumer(settings.topic(base), bootstrap_servers=settings.kafka_bootstrap,
                             auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=2000,
                             group_id=None)
    try:
        return list(consumer)
    finally:
        consumer.close()


def _wait_for(check: Callable[[], Any], what: str, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _assert_nothing_in_clear(settings) -> None:
    for m in _raw(settings, "feedback.dlq"):
        for secret in SECRETS:
            assert secret.encode() not in m.value, f"{secret!r} in clear on feedback.dlq at offset {m.offset}"
        assert b"original_b64" not in m.value


def test_a_poison_record_is_sealed_on_the_dlq_and_a_redrive_reprocesses_it(pipeline_env, service_group):
    _, settings = pipeline_env
    service_group.start("enricher")
    fid = str(uuid.uuid4())
    # Valid JSON, but not a feedback.received event: contact details have no place on it.
    poison = json.dumps({"schema_version": 1, "feedback_id": fid, "channel": "app", "unit": "turku-ed",
                         "text": f"{TEXT}. Soittakaa {PHONE} tai {EMAIL}", "email": EMAIL},
                        ensure_ascii=False).encode()
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    producer.send(settings.topic("feedback.received"), key=fid.encode(), value=poison).get(30)
    producer.close()

    def letters() -> list[dict]:
        return [json.loads(m.value) for m in _raw(settings, "feedback.dlq")
                if json.loads(m.value).get("feedback_id") == fid]

    (first,) = _wait_for(letters, "the poison record's dead letter")
    assert first["stage"] == "enricher" and first["error_type"] == "schema_violation"
    assert first["source_topic"] == settings.topic("feedback.received") and first["source_offset"] is not None
    _assert_nothing_in_clear(settings)
    assert unseal(contact_vault(settings), first).original == poison

    assert redrive(settings, stage="enricher").copied == 1
    again = [m for m in _raw(settings, "feedback.received") if m.key == fid.encode()]
    assert [m.value for m in again] == [poison, poison]  # the exact bytes, opened with the contact key
    # The enricher takes the redriven copy again (still poison here, so it is dead-lettered again).
    second = _wait_for(lambda: [d for d in letters() if d["source_offset"] == again[1].offset],
                       "the redriven record to be processed again")
    assert unseal(contact_vault(settings), second[0]).original == poison
    _assert_nothing_in_clear(settings)


def test_a_rejected_submission_keeps_its_contact_details_only_sealed(pipeline_env, service_group):
    _, settings = pipeline_env
    sp = service_group.start("ingest")
    body = {"unit": "turku-ed", "text": TEXT, "follow_up_consent": True, "shoe_size": 44,
            "contact": {"email": EMAIL, "phone": PHONE}}
    r = httpx.post(f"{sp.url}/v1/feedback/app", json=body, timeout=30,
                   headers={"X-API-Key": settings.ingest_api_keys["app"].get_secret_value()})
    assert r.status_code == 422

    def ingest_letters() -> list[dict]:
        return [d for d in (json.loads(m.value) for m in _raw(settings, "feedback.dlq")) if d["stage"] == "ingest"]

    (letter,) = _wait_for(ingest_letters, "the rejected submission's dead letter")
    assert "shoe_size" in letter["reason"]
    _assert_nothing_in_clear(settings)
    assert json.loads(unseal(contact_vault(settings), letter).original) == body
