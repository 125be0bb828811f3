"""The trends worker on the real Kafka: a synthetic spike of one unit's theme becomes exactly
one feedback.trend_alerts event and a counter tick; a steady theme raises nothing."""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest

pytestmark = pytest.mark.integration


def _event(unit: str, theme: str, at: datetime) -> dict:
    from pipelines.synthetic import enriched_event

    return enriched_event(unit=unit, text="synthetic", language="fi", theme_codes=[theme], sentiment="negative",
                          received_at=at, embedding=None)


def test_synthetic_spike_raises_one_alert(pipeline_env, service_group) -> None:
    from kafka import KafkaConsumer, KafkaProducer

    from schemas.validate import event_errors
    from services.topics import FEEDBACK_ENRICHED, FEEDBACK_TREND_ALERTS

    _, settings = pipeline_env
    trends = service_group.start("trends")
    # Yesterday noon UTC is the spike day; the seven days before it are the baseline.
    today = datetime.now(timezone.utc).replace(hour=12, minute=0, second=0, microsecond=0)
    spike_day = today - timedelta(days=1)
    baseline = [_event(u, t, spike_day - timedelta(days=d))
                for d in range(1, 8) for u, t in (("turku-ed", "access_waiting"), ("salo-ed", "food"))]
    spike = [_event("turku-ed", "access_waiting", spike_day + timedelta(minutes=m)) for m in range(8)]
    steady = [_event("salo-ed", "food", spike_day + timedelta(minutes=m)) for m in range(2)]

    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    topic = settings.topic(FEEDBACK_ENRICHED.name)
    for batch in (baseline, spike + steady):
        for ev in batch:
            producer.send(topic, key=ev["feedback_id"].encode(), value=json.dumps(ev).encode())
        producer.flush()
        time.sleep(2)
    producer.send(topic, key=b"poison", value=b"{not json")  # must not stop the worker
    producer.flush()
    producer.close()

    consumer = KafkaConsumer(settings.topic(FEEDBACK_TREND_ALERTS.name), bootstrap_servers=settings.kafka_bootstrap,
                             auto_offset_reset="earliest", enable_auto_commit=False, group_id=None,
                             consumer_timeout_ms=2000)
    alerts: list[dict] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        alerts.extend(json.loads(m.value) for m in consumer)
        if alerts:
            time.sleep(5)  # would a second alert (the steady theme, a repeat) follow?
            alerts.extend(json.loads(m.value) for m in consumer)
            break
    consumer.close()

    assert len(alerts) == 1, alerts
    (alert,) = alerts
    assert event_errors("feedback.trend_alerts", alert) == []
    assert (alert["unit"], alert["theme"], alert["service_area"]) == ("turku-ed", "access_waiting", "emergency")
    assert alert["window_start"] == spike_day.replace(hour=0).isoformat().replace("+00:00", "Z")
    assert alert["count"] == alert["threshold"] == 5  # fired when the count first reached it
    assert alert["baseline_days"] == 7 and alert["baseline_mean"] <= 1.0

    metrics = httpx.get(f"{trends.url}/metrics", timeout=10).text
    assert 'feedback_trend_alerts_total{service_area="emergency",theme="access_waiting"} 1.0' in metrics
    assert trends.proc.poll() is None, "the worker stopped"
    assert service_group.stop("trends") == 0
