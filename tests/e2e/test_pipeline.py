"""The whole pipeline end to end on the real Kafka, Elasticsearch and SMTP server.

Every service runs as its own process. The bundled sample set goes in through every
channel; the assertions are the product's promises: everything valid is indexed
exactly once, nothing personal reaches the index, bad input is dead-lettered with a
reason, only consenting respondents hear back, replays and restarts lose or
duplicate nothing.
"""
from __future__ import annotations

import json
import signal
import time
import uuid
from collections import Counter

import httpx
import pytest
from kafka import KafkaConsumer, KafkaProducer

from pipelines.closure import notification_id
from devstack.demo import DemoRun, inject_poison, mailbox_for, read_topic, scan_pii, send_samples, wait_indexed
from devstack.demo_samples import SAMPLES, sample_lines
from services.adapters.es import es_client
from devstack.smtp import read_mailbox
from services.topics import FEEDBACK_RECEIVED

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@pytest.fixture(scope="module")
def pipeline(pipeline_env, service_group):
    env, settings = pipeline_env
    service_group.start_all()
    run = DemoRun(settings)
    send_samples(run, service_group.running["ingest"].url)
    inject_poison(settings)
    es = es_client(settings)
    found = wait_indexed(es, settings.index_alias, sorted(run.accepted), timeout=600)
    assert found == len(run.accepted), "not every valid sample was indexed"
    return run, settings, es, service_group


def _all_docs(es, alias):
    es.indices.refresh(index=alias)
    return es.search(index=alias, size=10000, query={"match_all": {}})["hits"]["hits"]


def test_every_valid_item_is_indexed_exactly_once(pipeline):
    run, settings, es, _ = pipeline
    expected_valid = json.loads((SAMPLES / "expected.json").read_text())["counts"]["total_valid"]
    assert len(run.accepted) == expected_valid
    hits = _all_docs(es, settings.index_alias)
    ids = Counter(h["_id"] for h in hits)
    assert set(ids) == set(run.accepted)
    assert all(n == 1 for n in ids.values())


def test_documents_carry_enrichment_and_nothing_personal(pipeline):
    run, settings, es, _ = pipeline
    assert scan_pii(es, settings.index_alias) == []
    for hit in _all_docs(es, settings.index_alias):
        doc = hit["_source"]
        for field in ("text", "language", "sentiment", "channel", "unit", "received_at", "enriched_at",
                      "indexed_at", "model_version", "taxonomy_version", "embedding_model"):
            assert field in doc, f"{field} missing in {hit['_id']}"
        assert not {"email", "phone", "contact", "push_token"} & set(doc)
        if doc["text"]:
            assert len(doc["embedding"]) == 384
    redacted = [h["_source"] for h in _all_docs(es, settings.index_alias) if h["_source"]["redaction_total"]]
    assert any("[HETU]" in d["text"] for d in redacted)
    assert any("[EMAIL]" in d["text"] for d in redacted)
    assert any("[PHONE]" in d["text"] for d in redacted)


def test_invalid_items_land_in_the_dead_letter_topic_with_a_reason(pipeline):
    run, settings, _, _ = pipeline
    dlq = read_topic(settings, "feedback.dlq")
    ingest = [d for d in dlq if d["stage"] == "ingest"]
    assert len(ingest) == len(sample_lines("invalid.jsonl")) == len(run.rejected)
    assert all(d["reason"] and d["sealed"] and "original_b64" not in d for d in ingest)
    assert all(400 <= status < 500 for _, status, _ in run.rejected)
    enricher = [d for d in dlq if d["stage"] == "enricher"]
    assert len(enricher) == 1 and "channel" in enricher[0]["reason"]


def test_only_consenting_respondents_get_exactly_one_message(pipeline, stack):
    run, settings, es, group = pipeline
    token = next(iter(settings.api_tokens.values())).get_secret_value()
    resp = httpx.post(f"{group.running['api'].url}/v1/actions", json=run.samples.action(), timeout=30,
                      headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 202, resp.text
    action_id = resp.json()["action_id"]
    docs = [h["_source"] for h in _all_docs(es, settings.index_alias)]
    matching = [d for d in docs if d["unit"] == "turku-ed" and "access_waiting" in d["theme_codes"]]
    consenting_refs = {d["respondent_ref"] for d in matching if d["follow_up_consent"] and d["respondent_ref"]}
    silent_refs = {d["respondent_ref"] for d in matching if d["respondent_ref"] and not d["follow_up_consent"]}
    assert consenting_refs, "the sample set must have consenting respondents for the demo action"
    expected = {notification_id(action_id, r) for r in consenting_refs}
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and len(mailbox_for(stack.maildir, expected)) < len(expected):
        time.sleep(1)
    time.sleep(3)  # a duplicate would arrive right behind
    delivered = mailbox_for(stack.maildir, expected)
    assert set(delivered) == expected
    assert all(n == 1 for n in delivered.values())
    # Nobody outside the consenting set got mail for this action.
    for_action = [m for m in read_mailbox(stack.maildir)
                  if m["X-Notification-Id"] in {notification_id(action_id, r) for r in silent_refs}]
    assert for_action == []
    # Consent as given in the samples: every recipient address consented there.
    consenting_emails = {c["email"].lower() for b in sample_lines("app.jsonl") if b.get("follow_up_consent")
                         for c in [b["contact"]] if c.get("email")}
    consenting_emails |= {b["respondent"]["email"].lower() for b in sample_lines("survey.jsonl")
                          if (b.get("respondent") or {}).get("follow_up_consent") and b["respondent"].get("email")}
    import csv

    with (SAMPLES / "survey_export.csv").open(newline="", encoding="utf-8") as fh:
        consenting_emails |= {r["email"].lower() for r in csv.DictReader(fh)
                              if r["follow_up"].lower() == "yes" and r["email"]}
    recipients = {m["To"].lower() for m in read_mailbox(stack.maildir) if m["X-Notification-Id"] in expected}
    assert recipients <= consenting_emails
    # Documents the action answers are marked closed with it.
    es.indices.refresh(index=settings.index_alias)
    closed = es.count(index=settings.index_alias, query={"term": {"closure_action_ids": action_id}})["count"]
    assert closed == len(matching)


def test_replaying_the_input_topic_creates_no_duplicates(pipeline):
    run, settings, es, _ = pipeline
    topic = settings.topic(FEEDBACK_RECEIVED.name)
    consumer = KafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=3000, group_id=None)
    records = [(m.key, m.value) for m in consumer]
    consumer.close()
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    for key, value in records:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()
    before = {h["_id"]: h["_source"].get("closure_status") for h in _all_docs(es, settings.index_alias)}
    # Wait until the replayed events went all the way through: every doc re-indexed.
    enriched_at = {h["_id"]: h["_source"]["indexed_at"] for h in _all_docs(es, settings.index_alias)}
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        now = {h["_id"]: h["_source"]["indexed_at"] for h in _all_docs(es, settings.index_alias)}
        if all(now[i] != enriched_at[i] for i in now):
            break
        time.sleep(2)
    after = {h["_id"]: h["_source"].get("closure_status") for h in _all_docs(es, settings.index_alias)}
    assert set(after) == set(before) == set(run.accepted)
    assert es.count(index=settings.index_alias)["count"] == len(run.accepted)
    assert after == before, "a replay must not reset closure status"


def _valid_event(settings, n: int) -> dict:
    from pipelines.clock import utc_now

    return {"schema_version": 1, "feedback_id": str(uuid.uuid4()), "channel": "app", "unit": "raisio-hc",
            "service_area": "primary-care", "received_at": utc_now(), "submitted_at": None,
            "text": f"Odotin ajanvarausta puhelimessa pitkään, soitto numero {n} meni jonoon.",
            "rating": None, "rating_scale": None, "language_hint": "fi", "respondent_ref": None,
            "follow_up_consent": False, "source": {}, "idempotency_key": None}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_stopping_the_enricher_mid_stream_loses_nothing(pipeline, sig):
    run, settings, es, group = pipeline
    events = [_valid_event(settings, i) for i in range(300)]
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    for e in events:
        producer.send(settings.topic(FEEDBACK_RECEIVED.name), key=e["feedback_id"].encode(),
                      value=json.dumps(e).encode())
    producer.flush()
    producer.close()
    ids = [e["feedback_id"] for e in events]
    # Stop it while it is working through the batch.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        es.indices.refresh(index=settings.index_alias)
        done = es.count(index=settings.index_alias, query={"ids": {"values": ids}})["count"]
        if done >= 20:
            break
        time.sleep(0.3)
    assert done < len(ids), "the enricher finished before it could be stopped; use more events"
    group.stop("enricher", sig=sig)
    group.start("enricher")
    assert wait_indexed(es, settings.index_alias, ids, timeout=300) == len(ids)
    es.indices.refresh(index=settings.index_alias)
    assert es.count(index=settings.index_alias, query={"ids": {"values": ids}})["count"] == len(ids)
