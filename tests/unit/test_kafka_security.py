"""Kafka client security: the settings become the same TLS and SASL arguments for every client.

On Kubernetes the brokers listen with TLS and SCRAM-SHA-512 only (deploy/k8s), so a client
built without these arguments could not connect; these tests pin what each kind of client
(aiokafka, kafka-python, faust) gets from FEEDBACK_KAFKA_* settings.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from pathlib import Path

import pytest
from services.adapters.kafka_io import aiokafka_producer, kafka_security, kafka_ssl_context
from services.workers.trends import faust_credentials
from services.settings import Settings

SASL_SSL = {"kafka_security_protocol": "SASL_SSL", "kafka_username": "feedback-enricher",
            "kafka_password": "s3cret"}


def _ca_file(tmp_path: Path) -> Path:
    """A self-signed CA certificate in PEM (like Strimzi's cluster CA)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cluster-ca test")])
    start = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(start).not_valid_after(start + dt.timedelta(days=36500))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    path = tmp_path / "ca.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_plaintext_by_default_adds_no_tls_or_sasl():
    settings = Settings()
    assert kafka_security(settings) == {"security_protocol": "PLAINTEXT"}
    assert kafka_ssl_context(settings) is None
    assert faust_credentials(settings) is None


def test_sasl_ssl_gives_scram_credentials_and_a_verifying_context_with_the_ca(tmp_path):
    ca = _ca_file(tmp_path)
    settings = Settings(**SASL_SSL, kafka_ca_file=str(ca))
    kwargs = kafka_security(settings)
    context = kwargs.pop("ssl_context")
    assert kwargs == {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
                      "sasl_plain_username": "feedback-enricher", "sasl_plain_password": "s3cret"}
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "cluster-ca test"),),)]


def test_a_missing_ca_file_fails_at_start_not_at_first_connection(tmp_path):
    settings = Settings(**SASL_SSL, kafka_ca_file=str(tmp_path / "absent.crt"))
    with pytest.raises(FileNotFoundError):
        kafka_security(settings)


def test_empty_ca_file_means_system_cas():
    settings = Settings(**SASL_SSL, kafka_ca_file="")
    assert settings.kafka_ca_file is None
    assert kafka_security(settings)["ssl_context"].verify_mode == ssl.CERT_REQUIRED


def test_sasl_plaintext_has_no_tls_context():
    settings = Settings(**{**SASL_SSL, "kafka_security_protocol": "SASL_PLAINTEXT"},
                        kafka_sasl_mechanism="SCRAM-SHA-256")
    kwargs = kafka_security(settings)
    assert "ssl_context" not in kwargs
    assert kwargs["security_protocol"] == "SASL_PLAINTEXT" and kwargs["sasl_mechanism"] == "SCRAM-SHA-256"


def test_ssl_only_has_a_context_and_no_sasl(tmp_path):
    settings = Settings(kafka_security_protocol="SSL", kafka_ca_file=str(_ca_file(tmp_path)))
    kwargs = kafka_security(settings)
    assert set(kwargs) == {"security_protocol", "ssl_context"}
    creds = faust_credentials(settings)
    assert type(creds).__name__ == "SSLCredentials" and creds.protocol.value == "SSL"
    assert isinstance(creds.context, ssl.SSLContext) and creds.context.verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize("missing", ["kafka_username", "kafka_password"])
def test_sasl_without_credentials_is_refused_naming_the_setting(missing):
    values = {**SASL_SSL}
    del values[missing]
    settings = Settings(**values)  # es-setup reads the same ConfigMap and never builds a Kafka client
    with pytest.raises(ValueError, match=f"FEEDBACK_{missing.upper()}"):
        kafka_security(settings)
    with pytest.raises(ValueError, match=f"FEEDBACK_{missing.upper()}"):
        faust_credentials(settings)


def test_faust_gets_the_same_sasl_ssl_credentials(tmp_path):
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    settings = Settings(**SASL_SSL, kafka_ca_file=str(_ca_file(tmp_path)))
    auth = dict(credentials_to_aiokafka_auth(faust_credentials(settings)))
    assert isinstance(auth.pop("ssl_context"), ssl.SSLContext)
    expected = kafka_security(settings)
    expected.pop("ssl_context")
    assert auth == expected


def test_trends_app_carries_the_credentials(tmp_path):
    from services.workers.trends import make_app

    settings = Settings(**SASL_SSL, kafka_ca_file=str(_ca_file(tmp_path)), state_dir=tmp_path)
    app = make_app("trends", settings)
    creds = app.conf.broker_credentials
    assert creds.username == "feedback-enricher" and creds.protocol.value == "SASL_SSL"
    assert creds.mechanism.value == "SCRAM-SHA-512"


def test_aiokafka_producer_is_built_with_the_security_settings(tmp_path):
    settings = Settings(**SASL_SSL, kafka_ca_file=str(_ca_file(tmp_path)))

    async def build():
        return aiokafka_producer(settings)  # not started: no broker needed

    client = asyncio.run(build()).client
    assert client._security_protocol == "SASL_SSL"
    assert client._sasl_mechanism == "SCRAM-SHA-512"
    assert client._sasl_plain_username == "feedback-enricher" and client._sasl_plain_password == "s3cret"
    assert isinstance(client._ssl_context, ssl.SSLContext)
