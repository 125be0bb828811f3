"""The services' Kafka clients connect over TLS with SCRAM-SHA-512, and the generated ACLs hold.

A real Kafka broker (the local stack's jars) with a SASL_SSL listener like the Kubernetes one:
a certificate from a test CA, SCRAM-SHA-512 users, the StandardAuthorizer, and the ACLs of
deploy/k8s/access.py applied as Strimzi's user operator would. The clients are built by the
project's own code from FEEDBACK_KAFKA_* settings (aiokafka producer and consumer, kafka-python
consumer and admin). Ports: FEEDBACK_TEST_KAFKA_PORT + 20..22, apart from the session stack.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import importlib.util
import ipaddress
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
BASE_PORT = int(os.environ.get("FEEDBACK_TEST_KAFKA_PORT", "29092")) + 20
PLAIN_PORT, CONTROLLER_PORT, SASL_PORT = BASE_PORT, BASE_PORT + 1, BASE_PORT + 2
USERS = ("enricher", "ingest", "topics-create")


def _access():
    spec = importlib.util.spec_from_file_location("deploy_k8s_access_tls_scram", ROOT / "deploy" / "k8s" / "access.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _tls_files(folder: Path) -> tuple[Path, Path]:
    """A CA certificate and a PEM keystore (key + chain) for 127.0.0.1 signed by it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    start = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    end = start + dt.timedelta(days=36500)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "feedback test cluster CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "broker")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_file, keystore = folder / "ca.crt", folder / "broker.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    keystore.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption())
                         + cert.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM))
    return ca_file, keystore


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    from kafka.admin import (ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType, KafkaAdminClient,
                             NewTopic, ResourcePattern, ResourceType, ScramMechanism, UserScramCredentialUpsertion)

    from devstack.kafka import KafkaServer, ensure_kafka_libs
    from services.settings import default_cache_dir
    from services.topics import ALL_TOPICS

    work = tmp_path_factory.mktemp("secure-kafka")
    ca_file, keystore = _tls_files(work)

    class SecureKafka(KafkaServer):
        """The local broker plus a SASL_SSL listener; PLAINTEXT stays for the broker itself and set-up."""

        def write_config(self) -> Path:
            path = super().write_config()
            props = dict(line.split("=", 1) for line in path.read_text().splitlines() if line)
            props.update({
                "listeners": f"{props['listeners']},SASL_SSL://127.0.0.1:{SASL_PORT}",
                "advertised.listeners": f"{props['advertised.listeners']},SASL_SSL://127.0.0.1:{SASL_PORT}",
                "listener.security.protocol.map": f"{props['listener.security.protocol.map']},SASL_SSL:SASL_SSL",
                "sasl.enabled.mechanisms": "SCRAM-SHA-512",
                "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config":
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;",
                "ssl.keystore.type": "PEM",
                "ssl.keystore.location": str(keystore),
                "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                # The PLAINTEXT and controller listeners (loopback, this test only) are the admin.
                "super.users": "User:ANONYMOUS",
            })
            path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
            return path

    libs = ensure_kafka_libs(default_cache_dir())
    server = SecureKafka(libs, work, port=PLAIN_PORT, controller_port=CONTROLLER_PORT)
    server.start(timeout=180)
    try:
        access = _access()
        passwords = {w: uuid.uuid4().hex for w in USERS}
        admin = KafkaAdminClient(bootstrap_servers=server.bootstrap)
        try:
            admin.create_topics([NewTopic(t.name, 1, 1) for t in ALL_TOPICS])
            admin.alter_user_scram_credentials([
                UserScramCredentialUpsertion(access.user_name(w), ScramMechanism.SCRAM_SHA_512, passwords[w])
                for w in USERS])
            kinds = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP}
            patterns = {"literal": ACLResourcePatternType.LITERAL, "prefix": ACLResourcePatternType.PREFIXED}
            acls = [ACL(f"User:{access.user_name(w)}", "*", ACLOperation[_op(op)], ACLPermissionType.ALLOW,
                        ResourcePattern(kinds[kind], name, patterns[pattern]))
                    for w in USERS for kind, name, pattern, ops in access.acls(access.KAFKA_ACCESS[w]) for op in ops]
            result = admin.create_acls(acls)
            assert not result["failed"], result["failed"]
        finally:
            admin.close()
        yield {"ca": str(ca_file), "passwords": passwords, "access": access, "server": server}
    finally:
        server.stop()


def _op(name: str) -> str:
    """Strimzi's operation name (DescribeConfigs) as kafka-python's enum member (DESCRIBE_CONFIGS)."""
    return "".join(f"_{c}" if c.isupper() and i else c for i, c in enumerate(name)).upper()


def _settings(kafka: dict, workload: str, **extra) -> Settings:
    return Settings(kafka_bootstrap=f"127.0.0.1:{SASL_PORT}", kafka_security_protocol="SASL_SSL",
                    kafka_username=kafka["access"].user_name(workload),
                    kafka_password=kafka["passwords"][workload], kafka_ca_file=kafka["ca"], **extra)


def test_a_worker_produces_and_consumes_its_topics_over_tls_with_scram(secure_kafka):
    from aiokafka import AIOKafkaConsumer

    from services.adapters.kafka_io import aiokafka_producer, kafka_security
    from services.topics import FEEDBACK_ENRICHED, FEEDBACK_RECEIVED

    enricher = _settings(secure_kafka, "enricher")
    ingest = _settings(secure_kafka, "ingest")

    async def run() -> list[bytes]:
        # ingest writes feedback.received; the enricher reads it in its group and writes feedback.enriched.
        producer = aiokafka_producer(ingest)
        await producer.start()
        try:
            await producer.send_and_wait(FEEDBACK_RECEIVED.name, key=b"f1", value=b'{"n":1}')
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(FEEDBACK_RECEIVED.name, bootstrap_servers=enricher.kafka_bootstrap,
                                    group_id="feedback-enricher", auto_offset_reset="earliest",
                                    enable_auto_commit=False, **kafka_security(enricher))
        await consumer.start()
        try:
            batch = await consumer.getmany(timeout_ms=20_000)
            await consumer.commit()
        finally:
            await consumer.stop()
        producer = aiokafka_producer(enricher)
        await producer.start()
        try:
            await producer.send_and_wait(FEEDBACK_ENRICHED.name, key=b"f1", value=b'{"n":2}')
        finally:
            await producer.stop()
        return [r.value for records in batch.values() for r in records]

    assert asyncio.run(run()) == [b'{"n":1}']


def test_the_acls_refuse_what_the_access_table_does_not_grant(secure_kafka):
    from aiokafka import AIOKafkaConsumer
    from aiokafka.errors import GroupAuthorizationFailedError, TopicAuthorizationFailedError

    from services.adapters.kafka_io import aiokafka_producer, kafka_security
    from services.topics import FEEDBACK_RECEIVED, RESPONDENT_CONTACTS

    enricher = _settings(secure_kafka, "enricher")
    ingest = _settings(secure_kafka, "ingest")

    async def enricher_writes_contacts() -> None:
        producer = aiokafka_producer(enricher)
        await producer.start()
        try:
            await producer.send_and_wait(RESPONDENT_CONTACTS.name, key=b"r", value=b"{}")
        finally:
            await producer.stop()

    async def ingest_reads_what_it_wrote() -> None:
        consumer = AIOKafkaConsumer(FEEDBACK_RECEIVED.name, bootstrap_servers=ingest.kafka_bootstrap,
                                    group_id="feedback-ingest-snoop", auto_offset_reset="earliest",
                                    **kafka_security(ingest))
        await consumer.start()
        try:
            await consumer.getmany(timeout_ms=10_000)
        finally:
            await consumer.stop()

    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(enricher_writes_contacts())
    with pytest.raises((TopicAuthorizationFailedError, GroupAuthorizationFailedError)):
        asyncio.run(ingest_reads_what_it_wrote())


def test_kafka_python_clients_and_the_admin_connect_the_same_way(secure_kafka):
    from services.adapters.contacts_store import partition_count
    from services.adapters.kafka_io import admin_client
    from services.topics import ALL_TOPICS, FEEDBACK_RECEIVED

    creator = _settings(secure_kafka, "topics-create")
    admin = admin_client(creator)
    try:
        assert {t.name for t in ALL_TOPICS} <= set(admin.list_topics())
    finally:
        admin.close()
    enricher = _settings(secure_kafka, "enricher")
    assert partition_count(enricher, FEEDBACK_RECEIVED.name) == 1  # kafka-python consumer, metadata allowed


def test_a_client_without_credentials_or_with_a_wrong_password_is_refused(secure_kafka):
    from aiokafka.errors import KafkaConnectionError, KafkaError

    from services.adapters.kafka_io import aiokafka_producer

    wrong = _settings({**secure_kafka, "passwords": {"enricher": "wrong"}}, "enricher")
    plain = Settings(kafka_bootstrap=f"127.0.0.1:{SASL_PORT}")

    async def connect(settings: Settings) -> None:
        producer = aiokafka_producer(settings)
        try:
            await asyncio.wait_for(producer.start(), 30)
        finally:
            await producer.stop()

    for settings in (wrong, plain):
        with pytest.raises((KafkaError, KafkaConnectionError, asyncio.TimeoutError, OSError)):
            asyncio.run(connect(settings))
