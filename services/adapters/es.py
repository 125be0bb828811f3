"""Elasticsearch: client, index template, versioned index behind the alias."""
from __future__ import annotations

import copy
from typing import Any

from elasticsearch import AsyncElasticsearch, Elasticsearch

from schemas import load_json
from services.settings import Settings


def _client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments shared by the sync and async clients: timeouts, auth, TLS trust."""
    options: dict[str, Any] = {"request_timeout": 30, "retry_on_timeout": True, "max_retries": 3}
    if settings.es_username and settings.es_password:
        options["basic_auth"] = (settings.es_username, settings.es_password.get_secret_value())
    if settings.es_ca_certs:
        # The client refuses TLS options with an http:// URL: a CA with a plain URL is a mistake.
        options["ca_certs"] = settings.es_ca_certs
    return options


def es_client(settings: Settings) -> Elasticsearch:
    return Elasticsearch(settings.es_url, **_client_options(settings))


def async_es_client(settings: Settings) -> AsyncElasticsearch:
    return AsyncElasticsearch(settings.es_url, **_client_options(settings))


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
    """Install the template; create ``<alias>-v1`` behind the alias unless the alias exists;
    add the per-service-area filtered aliases.

    Returns the index the alias points at.
    """
    body = index_template(alias, dims)
    es.indices.put_index_template(name=template_name(alias), **body)
    if es.indices.exists_alias(name=alias):
        index = current_index(es, alias)
    else:
        index = versioned_index(alias, 1)
        if not es.indices.exists(index=index):
            es.indices.create(index=index, aliases={alias: {"is_write_index": True}})
        else:
            es.indices.put_alias(index=index, name=alias, is_write_index=True)
    ensure_area_aliases(es, alias, index)
    return index


def drop_index(es: Elasticsearch, alias: str) -> list[str]:
    """Undo :func:`setup_index`: delete the indices behind ``alias`` (its area aliases go with
    them) and its template. For a throwaway alias (a bench's); returns the deleted indices."""
    indices = sorted(es.indices.get_alias(name=alias)) if es.indices.exists_alias(name=alias) else []
    if indices:
        es.indices.delete(index=",".join(indices))
    if es.indices.exists_index_template(name=template_name(alias)):
        es.indices.delete_index_template(name=template_name(alias))
    return indices


def current_index(es: Elasticsearch, alias: str) -> str:
    """The index the alias writes to (the only one it points at, normally)."""
    found = es.indices.get_alias(name=alias)
    writers = [i for i, a in found.items() if a["aliases"][alias].get("is_write_index")]
    return (writers or sorted(found))[0]


def area_alias(alias: str, service_area: str) -> str:
    """The filtered alias of one service area, e.g. ``feedback-emergency``."""
    return f"{alias}-{service_area}"


def area_alias_actions(alias: str, index: str, op: str = "add") -> list[dict[str, Any]]:
    """``_aliases`` actions that add (or remove) every service area's filtered alias on ``index``.

    Service leads and Kibana spaces read through these, so an area only ever sees its own
    documents (see deploy/kibana/ROLES.md). Areas come from schemas/units.json.
    """
    from pipelines.units import service_areas

    actions: list[dict[str, Any]] = []
    for area in sorted(service_areas()):
        body: dict[str, Any] = {"index": index, "alias": area_alias(alias, area)}
        if op == "add":
            body["filter"] = {"term": {"service_area": area}}
        actions.append({op: body})
    return actions


def ensure_area_aliases(es: Elasticsearch, alias: str, index: str) -> None:
    """Point every service area's filtered alias at ``index`` only (idempotent, one atomic call)."""
    wanted = {a["add"]["alias"] for a in area_alias_actions(alias, index)}
    # An area alias left on another version (an interrupted reindex) would double its counts.
    stale = [{"remove": {"index": other, "alias": name}}
             for other, body in es.indices.get_alias(index=f"{alias}-v*").items() if other != index
             for name in body.get("aliases", {}) if name in wanted]
    es.indices.update_aliases(actions=stale + area_alias_actions(alias, index))


async def alias_exists(es: AsyncElasticsearch, alias: str) -> bool:
    """Readiness of a worker that writes through the alias: Elasticsearch answers and the alias is there."""
    return bool(await es.indices.exists_alias(name=alias))
