"""The small Elasticsearch indices next to the feedback alias that the closure loop and the
urgent worker own.

``<alias>-actions``: the audit store of published actions (one document per action,
written by the closure worker from closure.actions; read by the console and the
public board). ``<alias>-erasures``: the refs of erased respondents (written by the
erasure, read by the indexer to drop feedback still in flight). ``<alias>-urgent``: the state of
urgent items (written by the urgent worker, read by the console). ``<alias>-digests``: the
thanks digests sent (written by the digest job, so a rerun does not resend). ``<alias>-training``:
the quotes leads picked into the thanks training set (written and read by the console).
``<alias>-insights-drivers`` and ``<alias>-insights-emerging``: the insights jobs' results (read by
the API, the console and Kibana); ``<alias>-taxonomy-changes``: themes leads promoted from emerging
topics, one document per taxonomy version.

Writers create them on first use with the strict mappings from schemas/elasticsearch,
so no separate setup step can be forgotten; readers treat a missing index as empty.
"""
from __future__ import annotations

import copy
from typing import Any

from schemas import load_json

SIDE_INDICES = {"actions": "elasticsearch/actions-index.json", "erasures": "elasticsearch/erasures-index.json",
                "urgent": "elasticsearch/urgent-index.json", "digests": "elasticsearch/digests-index.json",
                "training": "elasticsearch/training-index.json",
                # The insights jobs' results and the taxonomy changes leads make (services/ops/insights.py).
                "insights-drivers": "elasticsearch/insights-drivers-index.json",
                "insights-emerging": "elasticsearch/insights-emerging-index.json",
                "taxonomy-changes": "elasticsearch/taxonomy-changes-index.json"}


def actions_index(alias: str) -> str:
    return f"{alias}-actions"


def erasures_index(alias: str) -> str:
    return f"{alias}-erasures"


def urgent_index(alias: str) -> str:
    return f"{alias}-urgent"


def training_index(alias: str) -> str:
    return f"{alias}-training"


def insights_index(alias: str, kind: str) -> str:
    """``<alias>-insights-drivers`` or ``<alias>-insights-emerging`` (``kind``: drivers, emerging)."""
    return f"{alias}-insights-{kind}"


def taxonomy_changes_index(alias: str) -> str:
    return f"{alias}-taxonomy-changes"


def _body(kind: str) -> dict[str, Any]:
    body = copy.deepcopy(load_json(SIDE_INDICES[kind]))
    body.pop("_comment", None)
    return body


def ensure_index(es: Any, alias: str, kind: str) -> str:
    """Create ``<alias>-<kind>`` with its mapping unless it exists (sync client)."""
    name = f"{alias}-{kind}"
    if not es.indices.exists(index=name):
        # 400 resource_already_exists: another process created it in between.
        es.options(ignore_status=400).indices.create(index=name, **_body(kind))
    return name


async def async_ensure_index(es: Any, alias: str, kind: str) -> str:
    """Create ``<alias>-<kind>`` with its mapping unless it exists (async client)."""
    name = f"{alias}-{kind}"
    if not await es.indices.exists(index=name):
        await es.options(ignore_status=400).indices.create(index=name, **_body(kind))
    return name
