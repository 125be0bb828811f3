"""The action preview on the real Elasticsearch: the API's and the console's answer the same, with
exact counts past Elasticsearch's default cap of 10,000 hits (a county-wide theme over a year
matches more than that)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import SecretStr

pytestmark = pytest.mark.integration

MATCHING = 10_050  # past the 10,000 that Elasticsearch counts without track_total_hits
CONSENTING = 37
TOKEN = "preview-lead-token"


@pytest.fixture(scope="module")
def settings(pipeline_env, index_events):
    from pipelines.synthetic import enriched_event

    _, settings = pipeline_env
    settings = settings.model_copy(update={"api_tokens": {"lead": SecretStr(TOKEN)},
                                           "lead_service_areas": {"lead": ["*"]}})
    now = datetime.now(timezone.utc)
    events = [enriched_event(unit="turku-ed", text="Jonotin kauan.", language="fi", theme_codes=["access_waiting"],
                             sentiment="negative", received_at=now - timedelta(minutes=i % 600), embedding=None,
                             follow_up_consent=i < CONSENTING * 2, respondent_ref=f"ref-{i // 2}")
              for i in range(MATCHING)]
    # Outside the selection: another unit, another theme, and before the period.
    events += [enriched_event(unit="salo-ed", text="Jonotin.", language="fi", theme_codes=["access_waiting"],
                              sentiment="negative", received_at=now, embedding=None),
               enriched_event(unit="turku-ed", text="Kiitos.", language="fi", theme_codes=["staff_attitude"],
                              sentiment="positive", received_at=now, embedding=None),
               enriched_event(unit="turku-ed", text="Jonotin.", language="fi", theme_codes=["access_waiting"],
                              sentiment="negative", received_at=now - timedelta(days=60), embedding=None,
                              follow_up_consent=True, respondent_ref="ref-old")]
    for start in range(0, len(events), 2_000):
        index_events(settings, events[start:start + 2_000])
    return settings


def test_api_and_console_preview_count_exactly_past_ten_thousand(settings) -> None:
    from fastapi.testclient import TestClient

    from services.apps.api import create_app

    now = datetime.now(timezone.utc)
    body: dict[str, Any] = {"unit": "turku-ed", "themes": ["access_waiting"],
                            "period": {"from": (now - timedelta(days=30)).isoformat(), "to": now.isoformat()},
                            "messages": {"fi": "Lisäsimme iltavuoroon hoitajan."}}
    with TestClient(create_app(settings)) as client:
        api = client.post("/v1/actions/preview", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
        client.post("/console/login", content=f"token={TOKEN}", follow_redirects=False,
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
        csrf = client.get("/console").text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
        console = client.post("/console/api/preview", json=body, headers={"X-CSRF-Token": csrf})
    assert api.status_code == 200, api.text
    assert api.json() == {"feedback": MATCHING, "consenting_respondents": CONSENTING}
    assert console.status_code == 200, console.text
    assert console.json() == api.json()
