"""A lead's action or acknowledgement while Kafka cannot take it: 503 with Retry-After, not 500."""
from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import KafkaConnectionError
from fastapi import HTTPException

from services.apps.http_common import KAFKA_RETRY_AFTER_S, send_or_503

REF = "r_" + "0" * 24


class Producer:
    """What send_and_wait does when the broker is gone, hangs, or the record is refused."""

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.sent: list[tuple[str, bytes, bytes]] = []

    async def send_and_wait(self, topic: str, value: bytes, key: bytes) -> None:
        if self.behaviour == "down":
            raise KafkaConnectionError("no broker")
        if self.behaviour == "hangs":
            await asyncio.sleep(60)
        if self.behaviour == "refused":
            raise ValueError("record too large")
        self.sent.append((topic, value, key))


@pytest.mark.parametrize("behaviour", ["down", "hangs"])
def test_kafka_unavailable_is_a_503_with_retry_after_and_a_json_body(behaviour: str) -> None:
    with pytest.raises(HTTPException) as caught:
        asyncio.run(send_or_503(Producer(behaviour), "closure.actions", b"{}", b"k", timeout_s=0.05))
    assert caught.value.status_code == 503
    assert caught.value.headers == {"Retry-After": str(KAFKA_RETRY_AFTER_S)}
    assert caught.value.detail["error"] == "unavailable"
    assert caught.value.detail["errors"][0]["field"] == "(service)"


def test_a_record_kafka_refuses_for_itself_is_not_called_an_outage() -> None:
    with pytest.raises(ValueError):
        asyncio.run(send_or_503(Producer("refused"), "closure.actions", b"{}", b"k", timeout_s=1))


def test_an_acknowledged_send_returns_quietly() -> None:
    producer = Producer("ok")
    asyncio.run(send_or_503(producer, "closure.actions", b"{}", b"k", timeout_s=1))
    assert producer.sent == [("closure.actions", b"{}", b"k")]


def test_the_opt_out_page_says_try_again_later_while_kafka_cannot_take_the_withdrawal(monkeypatch) -> None:
    import time

    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from pipelines.optout import opt_out_url
    from services.apps import privacy_api
    from services.apps.throttle import AuthGuard
    from services.settings import Settings

    from pipelines.intake import ContactRecord
    from pipelines.vault import ContactVault
    from services.apps.ingest import contact_event

    settings = Settings(ingest_kafka_timeout_s=0.05)
    vault = ContactVault([k.get_secret_value() for k in settings.contact_keys])
    record = contact_event(settings, vault, REF,
                           ContactRecord("asukas@example.fi", None, None, "email", "sv", True, "app"))
    monkeypatch.setattr(privacy_api, "read_contact", lambda _settings, _ref: dict(record))
    app = FastAPI()
    state = {"producer": Producer("down")}
    app.include_router(privacy_api.privacy_router(settings, state, AuthGuard(settings)))
    link = opt_out_url("", settings.pseudonym_key.get_secret_value().encode(), REF, time.time())
    with TestClient(app) as client:
        page = client.post(link, headers={"Accept": "text/html"})
        assert page.status_code == 503 and page.headers["Retry-After"] == str(KAFKA_RETRY_AFTER_S)
        assert 'data-outcome="unavailable"' in page.text
        one_click = client.post(link)  # RFC 8058 unsubscribe from a mail client
        assert one_click.status_code == 503 and one_click.json()["status"] == "unavailable"
        state["producer"] = Producer("ok")  # Kafka is back: the same link works
        assert client.post(link).json() == {"status": "withdrawn"}
