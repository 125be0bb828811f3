"""Which failures mean "a dependency is down, try again later" and which mean "this
record cannot be handled".

The worker runtime waits out the first kind (pausing, never dead-lettering) and
isolates the second kind down to the one record that causes it.
"""
from __future__ import annotations

import asyncio
import smtplib


class DependencyUnavailable(Exception):
    """Kafka, Elasticsearch, SMTP or a gateway did not do its part; the same work can
    succeed later, so it is retried and never dead-lettered."""


def is_kafka_error(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) comes from the Kafka client."""
    from aiokafka.errors import KafkaError

    return isinstance(exc, KafkaError) or isinstance(exc.__cause__, KafkaError)


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` says a dependency is unavailable rather than the input is bad."""
    if isinstance(exc, (DependencyUnavailable, ConnectionError, TimeoutError, asyncio.TimeoutError,
                        smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError)):
        return True
    if isinstance(exc, OSError) and not isinstance(exc, (FileNotFoundError, PermissionError)):
        return True  # refused, reset, unreachable: sockets
    try:
        from aiokafka import errors as kafka_errors
    except ImportError:  # pragma: no cover - aiokafka is a core dependency
        kafka_errors = None
    if kafka_errors is not None and isinstance(exc, kafka_errors.KafkaError):
        # The producer's own time-out (broker gone for longer than request_timeout_ms) is not
        # marked retriable by aiokafka, but it is exactly the "broker is down" case.
        return bool(exc.retriable) or isinstance(exc, (kafka_errors.KafkaTimeoutError,
                                                       kafka_errors.KafkaConnectionError))
    try:
        from elasticsearch import ApiError, TransportError
    except ImportError:  # pragma: no cover - elasticsearch is a core dependency
        return False
    if isinstance(exc, TransportError):  # connection refused, time-out, TLS: no answer at all
        return True
    if isinstance(exc, ApiError):
        return exc.meta.status == 429 or exc.meta.status >= 500
    return False
