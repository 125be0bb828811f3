"""The opt-out link on the real Kafka and Elasticsearch: a GET (what a mail scanner does) leaves
consent as it is; the confirmation page's POST withdraws it in the contact store and marks the
respondent's documents; an expired link withdraws nothing."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(pipeline_env, index_events):
    from fastapi.testclient import TestClient

    from pipelines.intake import ContactRecord
    from pipelines.pseudonym import respondent_ref
    from pipelines.synthetic import enriched_event
    from pipelines.vault import ContactVault
    from services.adapters.kafka_io import dumps
    from services.apps.api import create_app
    from services.apps.ingest import contact_event
    from services.topics import RESPONDENT_CONTACTS
    from kafka import KafkaProducer

    _, settings = pipeline_env
    key = settings.pseudonym_key.get_secret_value().encode()
    vault = ContactVault([k.get_secret_value() for k in settings.contact_keys])
    refs = {}
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    for name in ("scanned", "stale"):
        email = f"{name}.{time.time_ns()}@example.fi"
        refs[name] = ref = respondent_ref(key, email=email)
        record = contact_event(settings, vault, ref, ContactRecord(email, None, None, "email", "fi", True, "app"))
        producer.send(settings.topic(RESPONDENT_CONTACTS.name), key=ref.encode(), value=dumps(record))
    producer.flush(30)
    producer.close()
    event = enriched_event(unit="turku-ed", text="Jono oli pitkä.", language="fi", theme_codes=["access_waiting"],
                           sentiment="negative", received_at=datetime.now(timezone.utc), embedding=None,
                           respondent_ref=refs["scanned"], follow_up_consent=True)
    es = index_events(settings, [event])
    with TestClient(create_app(settings)) as client:
        yield {"settings": settings, "key": key, "refs": refs, "client": client, "es": es, "id": event["feedback_id"]}


def path_of(world, name: str, issued: float) -> str:
    from pipelines.optout import opt_out_url

    url = urlsplit(opt_out_url("http://x", world["key"], world["refs"][name], issued))
    return f"{url.path}?{url.query}"


def consenting(world, name: str) -> bool:
    from services.adapters.contacts_store import read_contact

    return read_contact(world["settings"], world["refs"][name])["consent"]["follow_up"]


def test_get_does_not_withdraw_and_post_does(world) -> None:
    client, link = world["client"], path_of(world, "scanned", time.time())
    for _ in range(2):  # a scanner, then the resident opening the page
        page = client.get(link)
        assert page.status_code == 200 and 'data-outcome="confirm"' in page.text
    assert consenting(world, "scanned"), "a GET must not withdraw consent"
    done = client.post(link, headers={"Accept": "text/html"})
    assert done.status_code == 200 and 'data-outcome="withdrawn"' in done.text
    assert not consenting(world, "scanned")
    es = world["es"]
    es.indices.refresh(index=world["settings"].index_alias)
    doc = es.search(index=world["settings"].index_alias, query={"ids": {"values": [world["id"]]}})["hits"]["hits"]
    assert doc[0]["_source"]["follow_up_consent"] is False
    assert client.post(link).json() == {"status": "already_withdrawn"}


def test_an_expired_link_withdraws_nothing(world) -> None:
    old = time.time() - timedelta(days=world["settings"].opt_out_link_days + 1).total_seconds()
    resp = world["client"].post(path_of(world, "stale", old))
    assert resp.status_code == 410 and resp.json()["status"] == "expired"
    assert consenting(world, "stale")
