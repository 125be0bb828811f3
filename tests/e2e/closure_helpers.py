"""What the closure loop's end-to-end tests share: respondents registered through the real
ingest, notifications put straight onto closure.notifications, the SMTP sink read back,
waiting for a condition."""
from __future__ import annotations

import random
import time
import uuid
from collections import Counter

import httpx
from kafka import KafkaProducer

from pipelines.clock import utc_now
from pipelines.closure import notification_id
from pipelines.pseudonym import respondent_ref
from schemas.validate import validate_event
from services.adapters.kafka_io import dumps
from devstack.smtp import read_mailbox
from services.topics import CLOSURE_NOTIFICATIONS

MESSAGES = {"fi": "Lisäsimme iltavuoroon kaksi hoitajaa.", "sv": "Vi har lagt till två skötare på kvällsskiftet.",
            "en": "We added two nurses to the evening shift."}


def register(ingest_url: str, settings, channels: list[str], langs: list[str], tag: str) -> list[dict]:
    """One app feedback with contact details and consent per (channel, language) pair; returns
    the people: i, channel, lang, ref, detail (the address), feedback_id."""
    key = settings.pseudonym_key.get_secret_value().encode()
    run = uuid.uuid4().hex[:8]
    digits = f"{random.randrange(10**5):05d}"
    people = []
    with httpx.Client(base_url=ingest_url, timeout=30) as client:
        for i, (channel, lang) in enumerate(zip(channels, langs)):
            detail = {"email": {"email": f"{tag}{i}.{run}@example.fi"}, "sms": {"phone": f"+35840{digits}{i:02d}"},
                      "push": {"push_token": f"push-{run}-{i}"}}[channel]
            body = {"unit": "turku-ed", "text": f"Odotin päivystyksessä kuusi tuntia ({i}).", "follow_up_consent": True,
                    "idempotency_key": f"{tag}-{run}-{i}",
                    "contact": {**detail, "preferred_channel": channel, "language": lang}}
            resp = client.post("/v1/feedback/app", json=body,
                               headers={"X-API-Key": settings.ingest_api_keys["app"].get_secret_value()})
            assert resp.status_code == 202, resp.text
            people.append({"i": i, "channel": channel, "lang": lang, "ref": respondent_ref(key, **detail),
                           "detail": next(iter(detail.values())), "feedback_id": resp.json()["feedback_id"]})
    return people


def notify(settings, people: list[dict], action_id: str) -> dict[str, dict]:
    """Produce one notification per person (what the closure worker would); nid -> person."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    out = {}
    for p in people:
        nid = notification_id(action_id, p["ref"])
        note = {"schema_version": 1, "notification_id": nid, "action_id": action_id, "respondent_ref": p["ref"],
                "language": p["lang"], "unit": "turku-ed", "feedback_ids": [p["feedback_id"]],
                "created_at": utc_now(), "messages": MESSAGES}
        validate_event("closure.notifications", note)
        producer.send(settings.topic(CLOSURE_NOTIFICATIONS.name), key=p["ref"].encode(), value=dumps(note))
        out[nid] = p
    producer.flush(30)
    producer.close()
    return out


def emails(maildir, nids) -> Counter:
    """How many emails the SMTP sink holds per notification id (of ``nids``)."""
    return Counter(m["X-Notification-Id"] for m in read_mailbox(maildir) if m["X-Notification-Id"] in nids)


def wait_for(predicate, timeout: float, what: str):
    """Poll ``predicate`` every second until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")
