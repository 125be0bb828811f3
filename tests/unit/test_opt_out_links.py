"""Opt-out links: a GET only shows a confirmation page (a mail scanner following the link must
not unsubscribe anyone), and links expire. No Kafka here: an app without its lifespan has no
producer, so anything that tried to withdraw consent would fail with a 500. Withdrawing by
POST on the real Kafka is tests/integration/test_opt_out.py."""
from __future__ import annotations

import hashlib
import hmac
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest
import time_machine
from fastapi.testclient import TestClient

from pipelines.optout import opt_out_status, opt_out_token, opt_out_url
from services.apps.api import create_app
from services.settings import Settings

REF = "r_" + "2" * 24
ISSUED = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings(public_base_url="http://testserver", opt_out_link_days=90, mail_from="palaute@alue.example")


@pytest.fixture()
def client(settings: Settings) -> TestClient:
    return TestClient(create_app(settings), follow_redirects=False)


def link(settings: Settings, issued: datetime = ISSUED) -> str:
    url = opt_out_url(settings.public_base_url, settings.pseudonym_key.get_secret_value().encode(), REF,
                      issued.timestamp())
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_get_shows_a_confirmation_form_and_changes_nothing(client: TestClient, settings: Settings):
    with time_machine.travel(ISSUED + timedelta(days=3), tick=False):
        page = client.get(link(settings), headers={"Accept-Language": "en"})
    assert page.status_code == 200, page.text
    assert 'data-outcome="confirm"' in page.text and 'method="post"' in page.text
    assert 'action="/v1/opt-out?ref=' in page.text and "Unsubscribe" in page.text
    assert page.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("days", [91, 400])
def test_an_expired_link_is_refused_with_another_way_out(client: TestClient, settings: Settings, days: int):
    with time_machine.travel(ISSUED + timedelta(days=days), tick=False):
        page = client.get(link(settings), headers={"Accept-Language": "fi"})
        one_click = client.post(link(settings))
        form = client.post(link(settings), headers={"Accept": "text/html", "Accept-Language": "sv"})
    assert page.status_code == 410 and 'data-outcome="expired"' in page.text and "<form" not in page.text
    assert "vanhentunut" in page.text and "palaute@alue.example" in page.text
    assert one_click.status_code == 410
    assert one_click.json()["status"] == "expired" and "palaute@alue.example" in one_click.json()["problem"]
    assert form.status_code == 410 and "har gått ut" in form.text


def test_a_link_still_within_its_lifetime_is_not_expired(settings: Settings):
    key = settings.pseudonym_key.get_secret_value().encode()
    token = opt_out_token(key, REF, ISSUED.timestamp())
    with time_machine.travel(ISSUED + timedelta(days=89), tick=False):
        assert opt_out_status(key, REF, token, time.time(), 90 * 86_400) == "valid"
    with time_machine.travel(ISSUED + timedelta(days=91), tick=False):
        assert opt_out_status(key, REF, token, time.time(), 90 * 86_400) == "expired"


def test_the_issue_time_is_signed(settings: Settings):
    key = settings.pseudonym_key.get_secret_value().encode()
    issued, mac = opt_out_token(key, REF, ISSUED.timestamp()).split(".")
    moved = f"{int(issued) + 200 * 86_400}.{mac}"  # an old link made to look new
    assert opt_out_status(key, REF, moved, ISSUED.timestamp() + 200 * 86_400, 90 * 86_400) == "invalid"
    future = opt_out_token(key, REF, ISSUED.timestamp() + 86_400)
    assert opt_out_status(key, REF, future, ISSUED.timestamp(), 90 * 86_400) == "invalid"


def test_an_undated_link_from_before_expiry_counts_as_expired(client: TestClient, settings: Settings):
    key = settings.pseudonym_key.get_secret_value().encode()
    legacy = hmac.new(key, f"opt-out:{REF}".encode(), hashlib.sha256).hexdigest()[:32]
    page = client.get(f"/v1/opt-out?ref={REF}&token={legacy}")
    assert page.status_code == 410 and 'data-outcome="expired"' in page.text
    assert client.get(f"/v1/opt-out?ref={REF}&token={'0' * 32}").status_code == 403
