"""Kafka serialisation, producers and the dead-letter record, shared by services."""
from __future__ import annotations

import json
import ssl
from typing import Any

import pydantic_core

from pipelines.clock import utc_now
from pipelines.dead_letters import seal
from pipelines.vault import ContactVault
from schemas.validate import validate_event
from services.settings import Settings


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON of a record (pydantic's serialiser: several times faster than json.dumps
    on the enricher's 384-number embeddings and on ingest's hot path)."""
    return pydantic_core.to_json(value)


def loads(raw: bytes | str) -> Any:
    return json.loads(raw)


def dead_letter(stage: str, reason: str, error_type: str, original: bytes | None, *, vault: ContactVault,
                feedback_id: str | None = None, topic: str | None = None,
                partition: int | None = None, offset: int | None = None) -> dict[str, Any]:
    """A valid feedback.dlq event: where it failed and why in clear, the original bytes sealed
    with the contact key (pipelines/dead_letters.py) for a redrive to open."""
    record = seal(vault, stage=stage, reason=reason, error_type=error_type, original=original,
                  failed_at=utc_now(), feedback_id=feedback_id, topic=topic, partition=partition, offset=offset)
    validate_event("feedback.dlq", record)
    return record


def kafka_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context that verifies the brokers (hostname and chain), None without TLS.

    The CA is ``kafka_ca_file`` (Strimzi's cluster CA on Kubernetes), else the system CAs.
    """
    if settings.kafka_security_protocol not in ("SSL", "SASL_SSL"):
        return None
    return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=settings.kafka_ca_file)


def sasl_login(settings: Settings) -> tuple[str, str]:
    """The SASL user and password; a clear error naming the missing setting."""
    # Checked here, when a Kafka client is built, not in Settings: processes that never talk to
    # Kafka (es-setup) share the ConfigMap that sets the protocol but get no Kafka user.
    missing = [name for name, value in (("FEEDBACK_KAFKA_USERNAME", settings.kafka_username),
                                        ("FEEDBACK_KAFKA_PASSWORD", settings.kafka_password)) if not value]
    if missing:
        raise ValueError(f"FEEDBACK_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol} needs "
                         f"{' and '.join(missing)}")
    assert settings.kafka_username and settings.kafka_password  # for the type checker
    return settings.kafka_username, settings.kafka_password.get_secret_value()


def kafka_security(settings: Settings) -> dict[str, Any]:
    """Security keyword arguments for every Kafka client built here.

    aiokafka (producers, consumers) and kafka-python (admin, tools) take the same names, so
    one dict serves both: ``AIOKafkaConsumer(..., **kafka_security(settings))``.
    """
    kwargs: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    context = kafka_ssl_context(settings)
    if context is not None:
        kwargs["ssl_context"] = context
    if settings.kafka_security_protocol.startswith("SASL_"):
        username, password = sasl_login(settings)
        kwargs.update(sasl_mechanism=settings.kafka_sasl_mechanism,
                      sasl_plain_username=username, sasl_plain_password=password)
    return kwargs


def aiokafka_producer(settings: Settings):
    """An acks=all aiokafka producer (caller starts and stops it).

    Not idempotent on purpose: after a broker restart aiokafka can get
    OutOfOrderSequenceNumber for an idempotent producer, which ends its sender for good
    (tests/e2e/test_faults.py found it). Every consumer here is idempotent (document
    ``_id``, notification ids, keyed compacted state), so a duplicate from a retry is
    harmless, and aiokafka sends one batch per partition at a time, so order holds.
    """
    from aiokafka import AIOKafkaProducer

    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=False,
        linger_ms=5,
        # A batch that cannot reach its leader fails after this long instead of 40 s: while
        # Kafka is down the worker then backs off (services/workers/runtime.py) rather than
        # keeping aiokafka busy retrying metadata for it.
        request_timeout_ms=15_000,
        value_serializer=None,
        key_serializer=None,
        **kafka_security(settings),
    )


def admin_client(settings: Settings):
    from kafka.admin import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="feedback-admin",
                            **kafka_security(settings))
