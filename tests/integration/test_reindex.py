"""`feedback reindex` on the real Elasticsearch: searches keep answering during the reindex,
counts never drop, writes made meanwhile are not lost, the alias and every area alias move
in one step; `--from-kafka` refreshes documents from feedback.enriched without bringing
erased ones back.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.integration

N_DOCS = 3000


def _events(n: int, seed: int = 1) -> list[dict[str, Any]]:
    from pipelines.synthetic import synthetic_events

    rng = np.random.default_rng(seed)
    base = rng.normal(size=(50, 384)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    texts = [("fi", f"Palaute numero {i}: jono oli pitkä") for i in range(50)]
    return list(synthetic_events(n, texts, base, seed=seed, end=datetime(2026, 11, 20, tzinfo=timezone.utc)))


@pytest.fixture(scope="module")
def loaded(pipeline_env):
    from elasticsearch.helpers import bulk

    from pipelines.documents import new_document, to_document
    from services.adapters.es import es_client

    env, settings = pipeline_env
    es = es_client(settings)
    events = _events(N_DOCS)
    docs = []
    for ev in events:
        doc = new_document(to_document(ev))
        doc.pop("week")  # written before the mapping had `week`: the reindex derives it
        docs.append(doc)
    bulk(es, ({"_index": settings.index_alias, "_id": d["feedback_id"], "_source": d} for d in docs),
         chunk_size=1000, refresh=True)
    return env, settings, es, events


def test_searches_keep_answering_and_counts_never_drop(loaded) -> None:
    from pipelines.synthetic import enriched_event
    from pipelines.units import service_areas
    from services.adapters.es import area_alias, current_index
    from services.ops.reindex import reindex

    env, settings, es, events = loaded
    alias = settings.index_alias
    client = es.options(request_timeout=30)
    stop = threading.Event()
    errors: list[str] = []
    counts: list[int] = []
    area_counts: list[int] = []
    written: list[str] = []
    closed: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            try:
                counts.append(client.count(index=alias)["count"])
                resp = client.search(index=alias, query={"match": {"text.fi_light": "jonossa"}}, size=5,
                                     track_total_hits=True)
                assert resp["hits"]["total"]["value"] > 0
                area_counts.append(client.count(index=area_alias(alias, "emergency"))["count"])
            except Exception as exc:  # noqa: BLE001 - recorded, asserted below
                errors.append(f"{type(exc).__name__}: {exc}")

    def writer() -> None:
        """Like the indexer and the closure worker: new documents and updates, retried when blocked."""
        from pipelines.documents import upsert_action

        i = 0
        while not stop.is_set():
            ev = enriched_event(unit="turku-ed", text=f"Uusi palaute {i}: jonotin", language="fi",
                                theme_codes=["access_waiting"], sentiment="negative",
                                received_at=datetime(2026, 11, 21, tzinfo=timezone.utc) + timedelta(minutes=i),
                                embedding=None)
            target = events[(i * 37) % N_DOCS]["feedback_id"]
            lines = upsert_action(alias, to_doc(ev)) + [
                {"update": {"_index": alias, "_id": target, "retry_on_conflict": 3}},
                {"doc": {"closure_status": "closed", "closure_action_ids": ["a-1"]}}]
            for _attempt in range(40):
                resp = client.bulk(operations=lines)
                if not resp["errors"]:
                    break
                time.sleep(0.25)  # write block during the last catch-up: retry, as the workers do
            else:
                errors.append(f"write not accepted: {json.dumps(resp)[:300]}")
            written.append(ev["feedback_id"])
            closed.append(target)
            i += 1
            time.sleep(0.02)

    def to_doc(ev: dict[str, Any]) -> dict[str, Any]:
        from pipelines.documents import to_document

        return to_document(ev)

    threads = [threading.Thread(target=reader), threading.Thread(target=writer)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    try:
        result = reindex(es, alias, batch_size=200)
        time.sleep(1.5)  # keep reading and writing against the new index for a moment
    finally:
        stop.set()
        for t in threads:
            t.join(30)

    assert not errors, errors[:5]
    assert len(counts) > 10, "the reader did not run during the reindex"
    assert all(b >= a for a, b in zip(counts, counts[1:])), "a count dropped"
    assert all(b >= a for a, b in zip(area_counts, area_counts[1:])), "an area count dropped"
    assert counts[0] >= N_DOCS

    assert result.source == f"{alias}-v1" and result.target == f"{alias}-v2"
    assert result.copied >= N_DOCS and result.rounds, result  # plus what the writer added before the copy
    assert current_index(es, alias) == f"{alias}-v2"
    aliases = es.indices.get_alias(index=f"{alias}-v*")
    assert set(aliases[f"{alias}-v1"]["aliases"]) == set()
    v2 = aliases[f"{alias}-v2"]["aliases"]
    assert v2[alias].get("is_write_index") is True
    for area in service_areas():
        assert v2[area_alias(alias, area)]["filter"] == {"term": {"service_area": area}}
    settings_v1 = es.indices.get_settings(index=f"{alias}-v1")[f"{alias}-v1"]["settings"]["index"]
    assert settings_v1["blocks"]["write"] == "true"  # kept for rollback, read-only

    # Nothing written during the reindex was lost, and every update arrived.
    es.indices.refresh(index=alias)
    assert es.count(index=alias)["count"] == N_DOCS + len(written)
    found = es.mget(index=alias, ids=written)["docs"]
    assert all(d["found"] for d in found)
    for d in es.mget(index=alias, ids=sorted(set(closed)), source_includes=["closure_status"])["docs"]:
        assert d["_source"]["closure_status"] == "closed", d["_id"]
    # Documents copied from the old mapping got the field the new one derives.
    assert es.count(index=alias, query={"bool": {"must_not": [{"exists": {"field": "week"}}]}})["count"] == 0
    assert es.indices.get_settings(index=f"{alias}-v2")[f"{alias}-v2"]["settings"]["index"]["refresh_interval"] == "1s"


def test_reindex_command_from_kafka(loaded) -> None:
    """The CLI end to end: v2 -> v3, replaying feedback.enriched onto existing documents only."""
    from kafka import KafkaProducer

    from services.adapters.es import current_index
    from services.topics import FEEDBACK_ENRICHED

    env, settings, es, events = loaded
    alias = settings.index_alias
    before = current_index(es, alias)
    changed = dict(events[0])
    changed["text"] = "Päivitetty teksti: jonotin kauan"
    erased = _events(1, seed=99)[0]  # never in the index (as if erased): must not be created
    erased["feedback_id"] = str(uuid.uuid4())
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    topic = settings.topic(FEEDBACK_ENRICHED.name)
    for ev in (changed, erased):
        producer.send(topic, key=ev["feedback_id"].encode(), value=json.dumps(ev).encode())
    producer.send(topic, key=b"bad", value=b"not json")
    producer.flush()
    producer.close()
    count_before = es.count(index=alias)["count"]

    proc = subprocess.run([sys.executable, "-m", "services.cli", "reindex", "--from-kafka", "--delete-old",
                           "--quiet", "--batch-size", "500"],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "replayed 1 (no document 1, invalid 1)" in proc.stdout, proc.stdout
    after = current_index(es, alias)
    assert after != before and after.endswith(str(int(before.rsplit("v", 1)[1]) + 1))
    assert not es.indices.exists(index=before)  # --delete-old
    es.indices.refresh(index=alias)
    assert es.count(index=alias)["count"] == count_before
    doc = es.get(index=alias, id=changed["feedback_id"])["_source"]
    assert doc["text"] == changed["text"]
    assert doc["closure_status"] in ("open", "closed")  # closure fields kept, not reset
    assert not es.exists(index=alias, id=erased["feedback_id"])


def test_reindex_of_an_index_made_before_area_aliases(loaded) -> None:
    """An index from before the filtered aliases existed: the swap adds them, removes nothing missing."""
    from pipelines.units import service_areas
    from services.adapters.es import area_alias, area_alias_actions, current_index
    from services.ops.reindex import reindex

    _, settings, es, _ = loaded
    alias = settings.index_alias
    source = current_index(es, alias)
    es.indices.update_aliases(actions=area_alias_actions(alias, source, op="remove"))
    result = reindex(es, alias, batch_size=1000, delete_old=True)
    aliases = es.indices.get_alias(index=result.target)[result.target]["aliases"]
    assert set(aliases) == {alias} | {area_alias(alias, a) for a in service_areas()}
    assert es.count(index=alias)["count"] == sum(es.count(index=area_alias(alias, a))["count"]
                                                 for a in service_areas())
