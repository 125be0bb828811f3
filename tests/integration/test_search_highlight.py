"""Search highlights are HTML-encoded on the real Elasticsearch: markup a resident typed comes
back escaped, and the only tags in a fragment are the <em> around matching terms."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

import pytest

pytestmark = pytest.mark.integration

MARKUP = 'Jono oli pitkä <script>alert("x")</script> & <b onclick="x()">jono</b> jatkui ulos asti.'


@pytest.fixture(scope="module")
def client(pipeline_env, index_events):
    from fastapi.testclient import TestClient

    from pipelines.embedding import make_embedder
    from pipelines.synthetic import enriched_event
    from services.apps.api import create_app

    _, settings = pipeline_env
    embedder = make_embedder(settings.embedder)
    event = enriched_event(unit="turku-ed", text=MARKUP, language="fi", theme_codes=["access_waiting"],
                           sentiment="negative", received_at=datetime(2026, 10, 5, 9, tzinfo=timezone.utc),
                           embedding=embedder.encode([MARKUP], kind="passage")[0], embedding_model=embedder.name)
    index_events(settings, [event])
    with TestClient(create_app(settings)) as c:
        c.headers["Authorization"] = "Bearer dev-lead-token"
        yield c


@pytest.mark.parametrize("body", [{"q": "jono", "mode": "keyword", "language": "fi"},
                                  {"q": "jono", "mode": "keyword"},
                                  {"q": "jono", "mode": "hybrid"}], ids=["keyword-fi", "keyword", "hybrid"])
def test_highlights_escape_the_residents_markup(client, body: dict[str, Any]) -> None:
    resp = client.post("/v1/search", json=body)
    assert resp.status_code == 200, resp.text
    hit = resp.json()["hits"][0]
    assert hit["text"] == MARKUP, "the text field stays the resident's text (JSON, not HTML)"
    fragments = " ".join(hit["highlight"])
    assert "<em>" in fragments, fragments
    assert "&lt;script&gt;" in fragments and "&amp;" in fragments, fragments
    assert set(re.findall(r"</?[a-zA-Z][^>]*>", fragments)) <= {"<em>", "</em>"}, fragments
