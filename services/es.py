"""Elasticsearch: client, index template, versioned index behind the alias."""
from __future__ import annotations

import copy
from typing import Any

from elasticsearch import AsyncElasticsearch, Elasticsearch

from schemas import load_json
from services.settings import Settings


def _auth(settings: Settings) -> dict[str, Any]:
    if settings.es_username and settings.es_password:
        return {"basic_auth": (settings.es_username, settings.es_password.get_secret_value())}
    return {}


def es_client(settings: Settings) -> Elasticsearch:
    return Elasticsearch(settings.es_url, request_timeout=30, retry_on_timeout=True, max_retries=3,
                         **_auth(settings))


def async_es_client(settings: Settings) -> AsyncElasticsearch:
    return AsyncElasticsearch(settings.es_url, request_timeout=30, retry_on_timeout=True, max_retries=3,
                              **_auth(settings))


def index_template(alias: str, dims: int) -> dict[str, Any]:
    """The template from schemas/elasticsearch for indices ``<alias>-v*``."""
    body = copy.deepcopy(load_json("elasticsearch/feedback-template.json"))
    body.pop("_comment", None)
    body["index_patterns"] = [f"{alias}-v*"]
    body["template"]["mappings"]["properties"]["embedding"]["dims"] = dims
    return body


def template_name(alias: str) -> str:
    return f"{alias}-template"


def versioned_index(alias: str, version: int) -> str:
    return f"{alias}-v{version}"


def setup_index(es: Elasticsearch, alias: str, dims: int) -> str:
    """Install the template; create ``<alias>-v1`` behind the alias unless the alias exists.

    Returns the index the alias points at.
    """
    body = index_template(alias, dims)
    es.indices.put_index_template(name=template_name(alias), **body)
    if es.indices.exists_alias(name=alias):
        return next(iter(es.indices.get_alias(name=alias)))
    index = versioned_index(alias, 1)
    if not es.indices.exists(index=index):
        es.indices.create(index=index, aliases={alias: {"is_write_index": True}})
    else:
        es.indices.put_alias(index=index, name=alias, is_write_index=True)
    return index
