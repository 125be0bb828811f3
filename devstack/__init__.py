"""Start real Kafka, Elasticsearch and an SMTP sink on loopback (no Docker needed).

    from devstack import LocalStack
    with LocalStack() as stack:
        os.environ.update(stack.env())

See ``stack.py`` for reuse and the state file, and each server module for its details
(and the known gaps of the Elasticsearch integ-test distribution).
"""
from devstack._proc import StackError, java_home
from devstack.elasticsearch import (
    ES_VERSION,
    ElasticsearchServer,
    download_es_zip,
    ensure_es_distribution,
    es_answers,
)
from devstack.kafka import KAFKA_VERSION, KafkaServer, ensure_kafka_libs, kafka_answers
from devstack.smtp import MaildirHandler, SmtpServerProcess, SmtpSink, read_mailbox, smtp_answers
from devstack.stack import LocalStack, default_stack_dir, read_state, stop_from_state

__all__ = [
    "ES_VERSION",
    "KAFKA_VERSION",
    "ElasticsearchServer",
    "KafkaServer",
    "LocalStack",
    "MaildirHandler",
    "SmtpServerProcess",
    "SmtpSink",
    "StackError",
    "default_stack_dir",
    "download_es_zip",
    "ensure_es_distribution",
    "ensure_kafka_libs",
    "es_answers",
    "java_home",
    "kafka_answers",
    "read_mailbox",
    "read_state",
    "smtp_answers",
    "stop_from_state",
]
