"""Erasure, end to end: after it, nothing of the respondent is readable in Elasticsearch or
in Kafka (after compaction), and feedback of theirs still in flight is dropped. Then key
rotation of the contact store.

Services as real processes (ingest, enricher, indexer, notifier, api) on the real Kafka
and Elasticsearch. The module's topics (with the notifier's log) get a one-second
segment.ms and max.compaction.lag.ms (production's guarantee, a day, scaled down) and a
tiny dirty ratio so the log cleaner compacts within seconds (docs/privacy.md).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta

import httpx
import pytest
from cryptography.fernet import Fernet
from kafka import KafkaProducer
from kafka.admin import ConfigResource
from pydantic import SecretStr

from closure_helpers import notify, wait_for
from pipelines.pseudonym import respondent_ref
from pipelines.vault import ContactVault
from schemas.validate import validate_event
from services.adapters.contacts_store import all_contacts, partition_count, partition_for, read_topic, rotate_keys
from devstack.demo import read_topic as read_json_topic
from services.adapters.es import es_client
from services.adapters.kafka_io import admin_client, dumps
from services.settings import Settings
from services.adapters.stores import erasures_index
from services.topics import (FEEDBACK_ENRICHED, FEEDBACK_RECEIVED, FEEDBACK_URGENT, NOTIFICATION_LOG,
                             RESPONDENT_CONTACTS)

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

# The dirty ratio alone does not bound the wait: once the cleaner has passed over a partition,
# a 107-byte tombstone behind three 4.5 KB records is 0.8 % dirty, below even 0.01, and it waits
# for more writes. max.compaction.lag.ms forces the pass, as it does in production.
FAST_COMPACTION = {"segment.ms": "1000", "max.compaction.lag.ms": "1000", "min.cleanable.dirty.ratio": "0.01",
                   "delete.retention.ms": "3600000"}
TEXT = "Odotin päivystyksessä viisi tuntia. Jono oli liian pitkä."


def compact_fast(settings: Settings, topics: list[str]) -> None:
    admin = admin_client(settings)
    try:
        admin.alter_configs([ConfigResource("TOPIC", t, configs=dict(FAST_COMPACTION)) for t in topics])
    finally:
        admin.close()


@pytest.fixture(scope="module")
def world(pipeline_env, service_group):
    env, settings = pipeline_env
    feedback_topics = [settings.topic(t.name) for t in (FEEDBACK_RECEIVED, FEEDBACK_ENRICHED, FEEDBACK_URGENT)]
    compact_fast(settings, [settings.topic(t.name) for t in (RESPONDENT_CONTACTS, NOTIFICATION_LOG)] + feedback_topics)
    service_group.start_all(("ingest", "api", "enricher", "indexer", "notifier"))
    key = settings.pseudonym_key.get_secret_value().encode()
    run = uuid.uuid4().hex[:8]
    digits = f"{int(run, 16) % 10**6:06d}"
    people = {"X": {"email": f"xavier.{run}@example.fi", "phone": f"+358 45 {digits[:3]} {digits[3:]}"},
              "Y": {"email": f"ylva.{run}@example.se"}, "Z": {"email": f"zoe.{run}@example.com"}}
    ids: dict[str, list[str]] = {}
    with httpx.Client(base_url=service_group.running["ingest"].url, timeout=30) as client:
        for name, contact in people.items():
            for n in range(2 if name == "X" else 1):
                resp = client.post("/v1/feedback/app", headers={
                    "X-API-Key": settings.ingest_api_keys["app"].get_secret_value()}, json={
                    "unit": "turku-ed", "text": TEXT, "follow_up_consent": True, "idempotency_key": f"{run}-{name}-{n}",
                    "contact": {**contact, "preferred_channel": "email", "language": "fi"}})
                assert resp.status_code == 202, resp.text
                ids.setdefault(name, []).append(resp.json()["feedback_id"])
    refs = {n: respondent_ref(key, email=c["email"]) for n, c in people.items()}
    es = es_client(settings)
    all_ids = [i for v in ids.values() for i in v]

    def indexed() -> bool:
        es.indices.refresh(index=settings.index_alias)
        return es.count(index=settings.index_alias, query={"ids": {"values": all_ids}})["count"] == len(all_ids)

    wait_for(indexed, 600, "every item indexed")
    # X hears back once, so the notifier's log holds a record of X for the erasure to remove.
    assert notify_one(settings, refs["X"], ids["X"][0]) == "delivered"
    records, _ = read_topic(settings, settings.topic(NOTIFICATION_LOG.name))
    assert any(r.key == refs["X"].encode() and r.value for r in records), "the notifier logged X's notification"
    return {"env": env, "settings": settings, "es": es, "people": people, "ids": ids, "refs": refs,
            "feedback_topics": feedback_topics, "run": run}


def notify_one(settings: Settings, ref: str, feedback_id: str) -> str:
    """One notification for ``ref`` (as the closure worker would send it); its receipt's status."""
    nid = next(iter(notify(settings, [{"ref": ref, "lang": "fi", "feedback_id": feedback_id}], str(uuid.uuid4()))))
    receipt = wait_for(lambda: next((r for r in read_json_topic(settings, "closure.deliveries")
                                     if r["notification_id"] == nid), None), 180, "the notification's receipt")
    return receipt["status"]


def docs_of(world, ref: str) -> int:
    world["es"].indices.refresh(index=world["settings"].index_alias)
    return world["es"].count(index=world["settings"].index_alias, query={"term": {"respondent_ref": ref}})["count"]


def test_erasure_by_phone_through_the_api(world, service_group):
    settings, refs, x = world["settings"], world["refs"], world["people"]["X"]
    api = service_group.running["api"].url
    token = settings.api_tokens["demo-lead"].get_secret_value()
    national = "0" + x["phone"].replace(" ", "").removeprefix("+358")  # another way to write the same number
    resp = httpx.post(f"{api}/v1/erasure", json={"phone": national}, timeout=120,
                      headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["erased"] == 1
    conf = body["confirmations"][0]
    # X gave an email too, so their ref is the email's: found by looking inside the contact records.
    assert conf["respondent_ref"] == refs["X"] and conf["identified_by"] == "phone"
    assert conf["documents_deleted"] == 2 and conf["contact_tombstoned"] and conf["kafka_tombstones"] == 6
    assert conf["requested_by"] == "demo-lead"
    assert docs_of(world, refs["X"]) == 0 and docs_of(world, refs["Y"]) == 1
    assert world["es"].get(index=erasures_index(settings.index_alias), id=refs["X"])["found"]
    confirmations = [e for e in read_json_topic(settings, "gdpr.erasure") if e["respondent_ref"] == refs["X"]]
    assert len(confirmations) == 1 and confirmations[0]["erasure_id"] == conf["erasure_id"]
    assert x["email"] not in json.dumps(confirmations) and digits_only(x["phone"]) not in json.dumps(confirmations)

    # Feedback X gave before the erasure but still in flight (e.g. a worker was down) is dropped.
    erased_at = datetime.fromisoformat(conf["requested_at"].replace("Z", "+00:00"))
    late = {"schema_version": 1, "feedback_id": str(uuid.uuid4()), "channel": "app", "unit": "turku-ed",
            "service_area": "emergency", "received_at": (erased_at - timedelta(seconds=5)).isoformat().replace(
                "+00:00", "Z"), "submitted_at": None, "text": TEXT, "rating": None, "rating_scale": None,
            "language_hint": "fi", "respondent_ref": refs["X"], "follow_up_consent": True, "source": {},
            "idempotency_key": None}
    validate_event("feedback.received", late)
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    producer.send(settings.topic(FEEDBACK_RECEIVED.name), key=late["feedback_id"].encode(), value=dumps(late))
    producer.flush(30)
    producer.close()
    indexer = service_group.running["indexer"].url

    def dropped() -> bool:
        text = httpx.get(f"{indexer}/metrics", timeout=10).text
        return any(line.startswith("feedback_erased_items_dropped_total ") and float(line.split()[-1]) >= 1
                   for line in text.splitlines())

    wait_for(dropped, 180, "the indexer to drop the late item")
    assert docs_of(world, refs["X"]) == 0
    world["ids"]["X"].append(late["feedback_id"])


def digits_only(phone: str) -> str:
    return "".join(ch for ch in phone if ch.isdigit())[-7:]


def test_nothing_of_the_erased_respondent_remains_in_kafka(world, service_group):
    settings, ref = world["settings"], world["refs"]["X"]
    contacts_topic = settings.topic(RESPONDENT_CONTACTS.name)
    x_ids = set(world["ids"]["X"])
    # A notification for X still on its way after the erasure is answered, but the notifier
    # writes nothing under X's ref again.
    assert notify_one(settings, ref, world["ids"]["X"][0]) == "skipped_no_contact"
    # Roll the segments that hold the erased records: compaction never touches the active one.
    time.sleep(2)
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    for topic in [*world["feedback_topics"], settings.topic(NOTIFICATION_LOG.name)]:
        parts = partition_count(settings, topic)
        wanted, fillers = set(range(parts)), []
        while wanted:
            k = str(uuid.uuid4()).encode()
            if (p := partition_for(k, parts)) in wanted:
                wanted.discard(p)
                fillers.append(k)
        for k in fillers:
            producer.send(topic, key=k, value=None)
    producer.flush(30)
    producer.close()
    # The contacts partition of X (and the notifier's log partition) roll with a new contact
    # for someone whose ref lands on the same partition.
    parts = partition_count(settings, contacts_topic)
    i = 0
    while True:
        email = f"filler{i}.{world['run']}@example.fi"
        if partition_for(respondent_ref(settings.pseudonym_key.get_secret_value().encode(), email=email).encode(),
                         parts) == partition_for(ref.encode(), parts):
            break
        i += 1
    resp = httpx.post(f"{service_group.running['ingest'].url}/v1/feedback/app", timeout=30, headers={
        "X-API-Key": settings.ingest_api_keys["app"].get_secret_value()}, json={
        "unit": "salo-ed", "text": "Kiitos.", "follow_up_consent": True, "idempotency_key": f"filler-{world['run']}",
        "contact": {"email": email, "preferred_channel": "email", "language": "fi"}})
    assert resp.status_code == 202

    def remaining() -> list[str]:
        left = []
        for topic, keys in ((contacts_topic, {ref}), (settings.topic(NOTIFICATION_LOG.name), {ref}),
                            *((t, x_ids) for t in world["feedback_topics"])):
            records, _ = read_topic(settings, topic)
            left += [f"{topic}@{r.offset}" for r in records
                     if r.key is not None and r.key.decode() in keys and r.value is not None]
        return left

    deadline = time.monotonic() + 120
    while (left := remaining()) and time.monotonic() < deadline:
        time.sleep(2)
    assert not left, f"records of the erased respondent still readable: {left}"
    # The tombstones themselves stay for delete.retention.ms, so every consumer learns of the erasure.
    records, _ = read_topic(settings, contacts_topic)
    assert [r.value for r in records if r.key == ref.encode()] == [None]


def test_erasure_by_email_from_the_command_line(world):
    settings, refs, z = world["settings"], world["refs"], world["people"]["Z"]
    env = {**os.environ, **world["env"]}
    out = subprocess.run([sys.executable, "-m", "services.cli", "erase", "--email", z["email"].upper()],
                         env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    conf = json.loads(out.stdout.strip().splitlines()[-1])
    assert conf["respondent_ref"] == refs["Z"] and conf["documents_deleted"] == 1
    assert conf["requested_by"].startswith("cli:")
    assert docs_of(world, refs["Z"]) == 0 and docs_of(world, refs["Y"]) == 1
    bad = subprocess.run([sys.executable, "-m", "services.cli", "erase", "--email", "a@b.fi", "--phone", "040"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0


def test_contact_key_rotation(world):
    settings = world["settings"]
    old = [k.get_secret_value() for k in settings.contact_keys]
    new = Fernet.generate_key().decode()
    rotated_settings = settings.model_copy(update={"contact_keys": [SecretStr(new), *settings.contact_keys]})
    report = rotate_keys(rotated_settings)
    assert report.rotated >= 2 and report.erased >= 2, report  # Y and the filler live; X and Z erased
    latest, _ = all_contacts(rotated_settings)
    only_new = ContactVault([new])
    live = {k.decode(): json.loads(v) for k, v in latest.items() if v is not None}
    assert world["refs"]["Y"] in live
    for ref, record in live.items():
        assert record["key_id"] == only_new.key_id
        only_new.decrypt(record["contact_ciphertext"])  # readable without the old key
    for name in ("X", "Z"):
        assert latest[world["refs"][name].encode()] is None, "rotation must not bring an erased contact back"
    env = {**os.environ, **world["env"], "FEEDBACK_CONTACT_KEYS": json.dumps([new, *old])}
    out = subprocess.run([sys.executable, "-m", "services.cli", "contacts", "rotate-key", "--dry-run"],
                         env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    dry = json.loads(out.stdout.strip().splitlines()[-1])
    assert dry["dry_run"] and dry["rotated"] == 0 and dry["already_current"] == len(live)
