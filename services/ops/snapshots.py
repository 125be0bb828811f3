"""Snapshots of the index behind the alias and its side indices: create, list, restore, SLM setup.

The decisions (names, which snapshot, renames, the SLM body) are in pipelines/snapshots.py;
this module only calls Elasticsearch. A restore brings the snapshot's version back as the
next free ``<alias>-v<N>``, re-applies the live erasure list to it, checks the document
count and only then swaps the alias (and the service-area aliases) in one ``_aliases``
call. The index the alias pointed at stays, for rollback.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from elasticsearch import ApiError, Elasticsearch
from elasticsearch.helpers import bulk, scan

from pipelines.snapshots import (
    SnapshotError,
    SnapshotInfo,
    of_alias,
    pick_latest,
    plan_restore,
    slm_policy,
    slm_policy_id,
    snapshot_name,
)
from services.adapters.es import area_alias_actions, current_index, ensure_area_aliases
from services.adapters.stores import SIDE_INDICES, erasures_index

_CHUNK = 1000  # refs per terms query when re-applying erasures


def side_indices(alias: str) -> list[str]:
    """Every side index of ``alias`` (services/adapters/stores.SIDE_INDICES): actions, erasures,
    urgent-item state, digests sent, training picks, insights and taxonomy changes. Some hold
    what nothing else can rebuild (the erasure list, leads' decisions), so every snapshot has them."""
    return [f"{alias}-{kind}" for kind in SIDE_INDICES]


def _error_reason(exc: ApiError) -> str:
    try:
        return exc.body["error"]["root_cause"][0]["reason"]
    except (TypeError, KeyError, IndexError):
        return str(exc.message)


def require_repository(es: Elasticsearch, repository: str) -> None:
    """Raise SnapshotError (one line) unless ``repository`` is registered."""
    try:
        es.snapshot.get_repository(name=repository)
    except ApiError as exc:
        if exc.meta.status == 404:
            raise SnapshotError(
                f"snapshot repository {repository!r} is not registered on this cluster "
                "(`feedback up` registers it locally; deployments run `feedback es backup-setup`)") from exc
        raise


def register_fs_repository(es: Elasticsearch, repository: str, location: str) -> None:
    """Register (or update) a shared-filesystem repository; ``location`` must be under ``path.repo``."""
    try:
        es.snapshot.create_repository(name=repository,
                                      repository={"type": "fs", "settings": {"location": location, "compress": True}})
    except ApiError as exc:
        raise SnapshotError(f"cannot register repository {repository!r} at {location}: {_error_reason(exc)} "
                            "(is the folder in the nodes' path.repo and writable by every node?)") from exc


@dataclass
class SnapshotResult:
    name: str
    repository: str
    counts: dict[str, int]
    seconds: float


def create_snapshot(es: Elasticsearch, alias: str, repository: str, name: str | None = None) -> SnapshotResult:
    """Snapshot the index behind ``alias`` and the side indices that exist; wait until it is done."""
    require_repository(es, repository)
    if not es.indices.exists_alias(name=alias):
        raise SnapshotError(f"alias {alias!r} does not exist; nothing to snapshot")
    started = time.monotonic()
    indices = [current_index(es, alias)] + [s for s in side_indices(alias) if es.indices.exists(index=s)]
    es.indices.refresh(index=",".join(indices))
    # Counted just before the snapshot: a restore checks it got this many back.
    counts = {i: int(es.count(index=i)["count"]) for i in indices}
    name = name or snapshot_name(alias, datetime.now(timezone.utc))
    resp = es.snapshot.create(repository=repository, snapshot=name, indices=",".join(indices),
                              include_global_state=False, wait_for_completion=True,
                              metadata={"alias": alias, "taken_by": "feedback es snapshot", "counts": counts})
    info = resp["snapshot"]
    if info.get("state") != "SUCCESS" or info.get("shards", {}).get("failed"):
        raise SnapshotError(f"snapshot {name} ended {info.get('state')} with "
                            f"{info.get('shards', {}).get('failed')} failed shards: {info.get('failures')}")
    return SnapshotResult(name, repository, counts, round(time.monotonic() - started, 2))


def list_snapshots(es: Elasticsearch, alias: str, repository: str) -> list[SnapshotInfo]:
    """Snapshots of ``alias`` in ``repository``, oldest first."""
    require_repository(es, repository)
    resp = es.snapshot.get(repository=repository, snapshot="*")
    return of_alias(alias, [SnapshotInfo.from_es(s) for s in resp["snapshots"]])


def _get_snapshot(es: Elasticsearch, alias: str, repository: str, name: str | None) -> SnapshotInfo:
    if name is None:
        latest = pick_latest(alias, list_snapshots(es, alias, repository))
        if latest is None:
            raise SnapshotError(f"no successful snapshot of {alias!r} in repository {repository!r}")
        return latest
    require_repository(es, repository)
    try:
        resp = es.snapshot.get(repository=repository, snapshot=name)
    except ApiError as exc:
        if exc.meta.status == 404:
            raise SnapshotError(f"no snapshot {name!r} in repository {repository!r}") from exc
        raise
    return SnapshotInfo.from_es(resp["snapshots"][0])


@dataclass
class RestoreResult:
    snapshot: str
    snapshot_started: datetime
    source: str
    target: str
    previous: str | None
    count: int
    erased_again: int
    side_restored: list[str] = field(default_factory=list)
    side_kept: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _erased_refs(es: Elasticsearch, alias: str) -> list[str]:
    index = erasures_index(alias)
    if not es.indices.exists(index=index):
        return []
    return [hit["_id"] for hit in scan(es, index=index, query={"query": {"match_all": {}}}, _source=False)]


def _ids_of(es: Elasticsearch, index: str, refs: list[str]) -> Iterator[str]:
    for start in range(0, len(refs), _CHUNK):
        query = {"query": {"terms": {"respondent_ref": refs[start:start + _CHUNK]}}}
        for hit in scan(es, index=index, query=query, _source=False):
            yield hit["_id"]


def reapply_erasures(es: Elasticsearch, alias: str, index: str) -> int:
    """Delete from ``index`` the documents of every respondent on the live erasure list.

    A snapshot older than an erasure still holds that respondent's feedback. By ids with
    bulk: the test cluster has no delete-by-query, and bulk works everywhere.
    """
    ids = sorted(set(_ids_of(es, index, _erased_refs(es, alias))))
    if not ids:
        return 0
    bulk(es, ({"_op_type": "delete", "_index": index, "_id": i} for i in ids), raise_on_error=True, refresh=True)
    return len(ids)


def restore_snapshot(es: Elasticsearch, alias: str, repository: str, name: str | None = None) -> RestoreResult:
    """Restore ``name`` (default: the newest successful snapshot of ``alias``) and swap the alias to it."""
    started = time.monotonic()
    snap = _get_snapshot(es, alias, repository, name)
    existing = list(es.indices.get(index=f"{alias}*", expand_wildcards="all"))
    plan = plan_restore(alias, snap, existing, side_indices(alias))
    pattern, replacement = plan.rename
    try:
        es.snapshot.restore(repository=repository, snapshot=snap.name, indices=",".join(plan.indices),
                            rename_pattern=pattern, rename_replacement=replacement,
                            include_aliases=False, include_global_state=False, wait_for_completion=True)
    except ApiError as exc:
        raise SnapshotError(f"restore of {snap.name} failed: {_error_reason(exc)}") from exc
    try:
        es.cluster.health(index=plan.target, wait_for_status="yellow", timeout="120s")
        es.indices.refresh(index=plan.target)
        erased = reapply_erasures(es, alias, plan.target)
        count = int(es.count(index=plan.target)["count"])
        if plan.expected_count is not None and count + erased != plan.expected_count:
            raise SnapshotError(f"{plan.target} has {count} documents (+{erased} erased again), the snapshot "
                                f"recorded {plan.expected_count}; alias left unchanged")
        previous = current_index(es, alias) if es.indices.exists_alias(name=alias) else None
        es.indices.update_aliases(actions=_swap(es, alias, previous, plan.target))
    except BaseException:
        # Readers still see what they saw: drop the half-done version (the side indices restored
        # in place were missing before, so they stay).
        es.indices.delete(index=plan.target, ignore_unavailable=True)
        raise
    ensure_area_aliases(es, alias, plan.target)  # clears area aliases left on any other version
    return RestoreResult(snapshot=snap.name, snapshot_started=snap.started, source=plan.source,
                         target=plan.target, previous=previous, count=count, erased_again=erased,
                         side_restored=list(plan.side_restore), side_kept=list(plan.side_kept),
                         seconds=round(time.monotonic() - started, 2))


def _swap(es: Elasticsearch, alias: str, previous: str | None, target: str) -> list[dict[str, Any]]:
    """One atomic ``_aliases`` body that moves the alias (and area aliases) to ``target``."""
    if previous is None:  # the alias was lost with its index: just add it
        return [{"add": {"index": target, "alias": alias, "is_write_index": True}}] + area_alias_actions(alias, target)
    from services.ops.reindex import swap_actions

    on_previous = es.indices.get_alias(index=previous)[previous]["aliases"]
    return swap_actions(alias, previous, target, on_previous)


def backup_setup(es: Elasticsearch, alias: str, repository: str, location: str, **retention: Any) -> dict[str, Any]:
    """Register the fs repository and the SLM policy (needs the default distribution for SLM)."""
    register_fs_repository(es, repository, location)
    policy = slm_policy(alias, repository, side_indices(alias), **retention)
    try:
        es.slm.put_lifecycle(policy_id=slm_policy_id(alias), **policy)
    except ApiError as exc:
        # The integ-test distribution has no SLM module: the route itself is unknown.
        if exc.meta.status in (400, 404, 405) and "no handler found" in str(exc.body):
            raise SnapshotError("this Elasticsearch has no snapshot lifecycle management (SLM needs the default "
                                "distribution, not the integ-test one); the repository is registered") from exc
        raise SnapshotError(f"cannot put SLM policy {slm_policy_id(alias)}: {_error_reason(exc)}") from exc
    return {"repository": repository, "location": location, "policy": slm_policy_id(alias), **policy}
