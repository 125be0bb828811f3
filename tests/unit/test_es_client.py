"""The Elasticsearch clients trust the CA of FEEDBACK_ES_CA_CERTS (no server needed).

Kubernetes runs Elasticsearch with ECK's self-signed HTTPS certificate; every
client of services/adapters/es.py must verify it with that CA, the sync and the async one.
"""
from __future__ import annotations

import asyncio

import certifi
import pytest

from services.adapters.es import async_es_client, es_client
from services.settings import Settings

HTTPS = "https://feedback-es-http:9200"


def node_config(client):
    (node,) = client.transport.node_pool.all()
    return node.config


def close(client) -> None:
    result = client.close()
    if asyncio.iscoroutine(result):
        asyncio.run(result)


@pytest.mark.parametrize("make", [es_client, async_es_client], ids=["sync", "async"])
def test_clients_verify_https_with_the_configured_ca(make):
    ca = certifi.where()  # any PEM bundle: the client only keeps the path
    client = make(Settings(es_url=HTTPS, es_ca_certs=ca, es_username="feedback", es_password="pw"))
    try:
        config = node_config(client)
        assert config.scheme == "https" and config.host == "feedback-es-http"
        assert config.ca_certs == ca
        assert config.verify_certs is True
    finally:
        close(client)


@pytest.mark.parametrize("make", [es_client, async_es_client], ids=["sync", "async"])
def test_clients_without_a_ca_use_the_defaults(make):
    client = make(Settings(es_url=HTTPS, es_ca_certs=None))
    try:
        config = node_config(client)
        assert config.ca_certs is None and config.verify_certs is True
    finally:
        close(client)


def test_empty_ca_setting_means_unset(monkeypatch):
    # docker-compose passes FEEDBACK_ES_CA_CERTS="" (plain HTTP there).
    monkeypatch.setenv("FEEDBACK_ES_CA_CERTS", "")
    monkeypatch.setenv("FEEDBACK_ES_URL", "http://elasticsearch:9200")
    settings = Settings()
    assert settings.es_ca_certs is None
    client = es_client(settings)
    try:
        assert node_config(client).ca_certs is None
    finally:
        close(client)


def test_a_ca_with_a_plain_http_url_fails_loudly():
    with pytest.raises(ValueError, match="https"):
        es_client(Settings(es_url="http://feedback-es-http:9200", es_ca_certs=certifi.where()))
