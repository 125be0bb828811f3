"""Ingest against the real Kafka: auth, field-level errors, idempotency, contact split."""
from __future__ import annotations

import json

import httpx
import pytest

from pipelines.vault import ContactVault

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ingest(pipeline_env, service_group):
    env, settings = pipeline_env
    sp = service_group.start("ingest")
    return httpx.Client(base_url=sp.url, timeout=30), settings


def key(settings, channel: str) -> dict[str, str]:
    return {"X-API-Key": settings.ingest_api_keys[channel].get_secret_value()}


def test_wrong_key_is_401_with_a_json_body(ingest):
    client, settings = ingest
    r = client.post("/v1/feedback/app", json={"unit": "turku-ed", "text": "x"}, headers={"X-API-Key": "nope"})
    assert r.status_code == 401 and r.json()["errors"][0]["field"] == "X-API-Key"
    r = client.post("/v1/feedback/kiosk", json={}, headers=key(settings, "app"))  # app key on the kiosk route
    assert r.status_code == 401


def test_bad_input_is_422_naming_fields_and_dead_lettered(ingest, topic_records):
    client, settings = ingest
    r = client.post("/v1/feedback/kiosk", json={"kiosk_id": "k", "unit": "turku-ed", "smiley": 9, "x": 1},
                    headers=key(settings, "kiosk"))
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert fields == {"smiley", "x"}
    r = client.post("/v1/feedback/app", content=b"{not json", headers=key(settings, "app"))
    assert r.status_code == 400 and r.json()["error"] == "invalid_json"
    dlq = [json.loads(v) for _, v in topic_records(settings, "feedback.dlq")]
    assert any(d["stage"] == "ingest" and "smiley" in d["reason"] for d in dlq)
    assert any(d["error_type"] == "invalid_json" for d in dlq)


def test_retry_with_the_same_key_is_harmless(ingest, topic_records):
    client, settings = ingest
    body = {"unit": "raisio-hc", "text": "Hyvä palvelu", "idempotency_key": "retry-1"}
    first = client.post("/v1/feedback/app", json=body, headers=key(settings, "app"))
    second = client.post("/v1/feedback/app", json=body, headers=key(settings, "app"))
    assert first.status_code == 202 and second.status_code == 200
    assert first.json()["feedback_id"] == second.json()["feedback_id"]
    assert second.json()["status"] == "duplicate"
    ids = [json.loads(v)["feedback_id"] for _, v in topic_records(settings, "feedback.received")]
    assert ids.count(first.json()["feedback_id"]) == 1


def test_contact_is_split_off_encrypted_under_a_pseudonym(ingest, topic_records):
    client, settings = ingest
    body = {"unit": "turku-ed", "text": "Odotin kauan.", "follow_up_consent": True, "idempotency_key": "c-1",
            "contact": {"email": "maija.meikalainen@example.fi", "phone": "040 765 4321", "language": "sv"}}
    r = client.post("/v1/feedback/app", json=body, headers=key(settings, "app"))
    assert r.status_code == 202
    fid = r.json()["feedback_id"]
    received = [json.loads(v) for _, v in topic_records(settings, "feedback.received")]
    event = next(e for e in received if e["feedback_id"] == fid)
    # The phone in any of its forms; a bare "765" would also match random timestamps and refs.
    phone_forms = ("040 765 4321", "0407654321", "407654321", "765 4321")
    assert "maija" not in json.dumps(event) and not any(p in json.dumps(event) for p in phone_forms)
    ref = event["respondent_ref"]
    contacts = [(k.decode(), v) for k, v in topic_records(settings, "respondent.contacts")]
    raw = next(v for k, v in contacts if k == ref)
    assert b"maija" not in raw and not any(p.encode() in raw for p in phone_forms)
    record = json.loads(raw)
    assert record["consent"]["follow_up"] is True and record["language"] == "sv"
    vault = ContactVault([k.get_secret_value() for k in settings.contact_keys])
    assert vault.decrypt(record["contact_ciphertext"]).email == "maija.meikalainen@example.fi"


def test_health_ready_and_metrics(ingest):
    client, _ = ingest
    assert client.get("/health").status_code == 200
    assert client.get("/ready").json() == {"ready": True}
    metrics = client.get("/metrics").text
    assert 'feedback_ingest_requests_total{channel="app",outcome="accepted"}' in metrics
    assert "maija" not in metrics


def test_the_idempotency_key_header_dedupes_and_the_openapi_document_lists_both_headers(ingest):
    client, settings = ingest
    headers = {**key(settings, "kiosk"), "Idempotency-Key": "press-77"}
    press = {"kiosk_id": "k-1", "unit": "turku-ed", "smiley": 4}
    first = client.post("/v1/feedback/kiosk", json=press, headers=headers)
    second = client.post("/v1/feedback/kiosk", json=press, headers=headers)
    assert (first.status_code, second.status_code) == (202, 200)
    assert second.json() == {"feedback_id": first.json()["feedback_id"], "status": "duplicate"}
    spec = client.get("/openapi.json").json()
    for path in ("/v1/feedback/app", "/v1/feedback/survey", "/v1/feedback/kiosk"):
        params = {(p["name"], p["in"], p["required"]) for p in spec["paths"][path]["post"]["parameters"]}
        assert params == {("X-API-Key", "header", True), ("Idempotency-Key", "header", False)}
