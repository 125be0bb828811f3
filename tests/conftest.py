"""Shared fixtures: one real local stack per test session, isolated names per test.

Integration and e2e tests use the real Kafka, Elasticsearch and SMTP sink started
by devstack, on ports apart from a developer's `feedback up` stack.
Each test module gets its own topic prefix and index alias, so modules never see
each other's data and the stack is started only once.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# Overridable so that two test sessions on one machine can each have their own stack
# (e.g. FEEDBACK_TEST_KAFKA_PORT=39092 FEEDBACK_TEST_ES_PORT=39200 FEEDBACK_TEST_SMTP_PORT=30025
# FEEDBACK_TEST_SERVICE_PORT_OFFSET=2000 FEEDBACK_TEST_STACK_DIR=/tmp/other-stack).
TEST_PORTS = {"kafka_port": int(os.environ.get("FEEDBACK_TEST_KAFKA_PORT", "29092")),
              "es_port": int(os.environ.get("FEEDBACK_TEST_ES_PORT", "29200")),
              "smtp_port": int(os.environ.get("FEEDBACK_TEST_SMTP_PORT", "20025"))}
# Services under test listen on 9080, 9081, 9091..9094 by default.
SERVICE_PORT_OFFSET = int(os.environ.get("FEEDBACK_TEST_SERVICE_PORT_OFFSET", "1000"))


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator["LocalStack"]:  # noqa: F821
    """Kafka, Elasticsearch and the SMTP sink, started once per session (or reused)."""
    from devstack import LocalStack

    s = LocalStack(**TEST_PORTS, stack_dir=os.environ.get("FEEDBACK_TEST_STACK_DIR")
                   or tmp_path_factory.getbasetemp().parent / "feedback-test-stack")
    s.start(timeout=300)
    yield s
    s.stop()


def isolated_env(stack, name: str, tmp: Path) -> dict[str, str]:
    """FEEDBACK_* variables pointing at the stack with a unique topic prefix and alias."""
    run = f"{name}-{uuid.uuid4().hex[:6]}"
    return {**stack.env(), "FEEDBACK_TOPIC_PREFIX": f"{run}.", "FEEDBACK_INDEX_ALIAS": f"{run}-feedback",
            "FEEDBACK_STATE_DIR": str(tmp / "state"), "FEEDBACK_LOG_LEVEL": "INFO", "FEEDBACK_DEV_MODE": "true",
            "FEEDBACK_PUBLIC_BASE_URL": f"http://127.0.0.1:{8081 + SERVICE_PORT_OFFSET}"}


@pytest.fixture(scope="module")
def pipeline_env(stack, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """Settings env for one module with its topics and index created."""
    from pipelines.embedding import make_embedder
    from services.adapters.es import es_client, setup_index
    from services.settings import Settings
    from services.adapters.topic_admin import create_topics

    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "-")[:20]
    env = isolated_env(stack, name, tmp_path_factory.mktemp(name))
    settings = Settings(**{k.removeprefix("FEEDBACK_").lower(): v for k, v in env.items()
                           if k.startswith("FEEDBACK_")})
    create_topics(settings)
    setup_index(es_client(settings), settings.index_alias, make_embedder(settings.embedder).dim)
    return env, settings


@pytest.fixture(scope="module")
def service_group(pipeline_env, tmp_path_factory: pytest.TempPathFactory):
    """Start services of the pipeline as real processes; stopped at module end."""
    from devstack.processes import ServiceGroup

    env, _ = pipeline_env
    group = ServiceGroup(env, tmp_path_factory.mktemp("logs"), port_offset=SERVICE_PORT_OFFSET)
    yield group
    group.stop_all()


@pytest.fixture(scope="session")
def index_events():
    """Upsert enriched events into a module's alias as the indexer does, refreshed: returns the client."""
    from pipelines.documents import to_document, upsert_action
    from services.adapters.es import es_client

    def index(settings, events: list[dict]):
        es = es_client(settings)
        lines = [line for ev in events for line in upsert_action(settings.index_alias, to_document(ev))]
        resp = es.bulk(operations=lines, refresh=True)
        assert not resp["errors"], resp
        return es

    return index


@pytest.fixture(scope="session")
def topic_records():
    """Read every record of a topic (by base name) from the beginning: [(key, value), ...]."""
    from kafka import KafkaConsumer

    def read(settings, base: str) -> list[tuple[bytes | None, bytes | None]]:
        consumer = KafkaConsumer(settings.topic(base), bootstrap_servers=settings.kafka_bootstrap,
                                 auto_offset_reset="earliest", enable_auto_commit=False,
                                 consumer_timeout_ms=3000, group_id=None)
        try:
            return [(m.key, m.value) for m in consumer]
        finally:
            consumer.close()

    return read
