"""`feedback es snapshot / snapshots / restore` on the real Elasticsearch.

Index documents, snapshot, damage or delete the index, restore, and find every document
again (count and ids) behind the alias, with the service-area aliases moved along. A
respondent erased after the snapshot stays erased. Failures are one line, not a traceback.
The test cluster has no delete-by-query, so documents are deleted by id with bulk.
"""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timezone
from typing import Any

import pytest

pytestmark = pytest.mark.integration

N_DOCS = 60
REFS = ["r_snapshot_a", "r_snapshot_b", "r_snapshot_c"]


def _events(n: int) -> list[dict[str, Any]]:
    from pipelines.synthetic import enriched_event
    from pipelines.units import units as unit_registry

    codes = sorted(unit_registry())
    return [enriched_event(unit=codes[i % len(codes)], text=f"Palaute {i}: jono oli pitkä", language="fi",
                           theme_codes=["access_waiting"], sentiment="negative",
                           received_at=datetime(2026, 10, 1 + i % 28, 12, tzinfo=timezone.utc), embedding=None,
                           feedback_id=f"snap-{i:04d}", respondent_ref=REFS[i % len(REFS)])
            for i in range(n)]


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.cli", "es", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=300)


def ids_behind(es, alias: str) -> set[str]:
    from elasticsearch.helpers import scan

    es.indices.refresh(index=alias)
    return {hit["_id"] for hit in scan(es, index=alias, query={"query": {"match_all": {}}}, _source=False)}


def delete_by_ids(es, index: str, ids) -> None:
    from elasticsearch.helpers import bulk

    bulk(es, ({"_op_type": "delete", "_index": index, "_id": i} for i in ids), refresh=True)


@pytest.fixture(scope="module")
def loaded(pipeline_env, index_events):
    """The module's alias with N_DOCS documents and one published action in <alias>-actions."""
    from services.adapters.es import es_client
    from services.adapters.stores import actions_index, ensure_index

    env, settings = pipeline_env
    es = es_client(settings)
    if es.options(ignore_status=404).snapshot.get_repository(name=settings.snapshot_repository).meta.status != 200:
        pytest.skip(f"Elasticsearch on {settings.es_url} has no repository {settings.snapshot_repository}: "
                    "it was started without path.repo (restart the test stack)")
    events = _events(N_DOCS)
    index_events(settings, events)
    ensure_index(es, settings.index_alias, "actions")
    es.index(index=actions_index(settings.index_alias), id="act-1", refresh=True,
             document={"action_id": "act-1", "unit": events[0]["unit"], "status": "published"})
    return env, settings, es, {ev["feedback_id"] for ev in events}


def area_alias_targets(es, alias: str) -> dict[str, set[str]]:
    """For each service-area alias of ``alias``: the indices it points at."""
    from pipelines.units import service_areas
    from services.adapters.es import area_alias

    found = {}
    for area in service_areas():
        name = area_alias(alias, area)
        found[name] = set(es.indices.get_alias(name=name)) if es.indices.exists_alias(name=name) else set()
    return found


def test_snapshot_damage_restore_finds_every_document(loaded) -> None:
    from services.adapters.es import current_index
    from services.adapters.stores import actions_index

    env, settings, es, ids = loaded
    alias = settings.index_alias
    before = current_index(es, alias)
    assert ids_behind(es, alias) == ids

    made = cli(env, "snapshot")
    assert made.returncode == 0, made.stderr
    name = made.stdout.split()[1]
    assert name.startswith(alias + "-")
    assert f"{before}" in made.stdout and f"{N_DOCS} documents" in made.stdout
    listed = cli(env, "snapshots")
    assert listed.returncode == 0 and name in listed.stdout and "SUCCESS" in listed.stdout, listed

    # Damage: two thirds of the documents and the whole actions index are gone.
    lost = sorted(ids)[: 2 * N_DOCS // 3]
    delete_by_ids(es, alias, lost)
    es.indices.delete(index=actions_index(alias))
    assert len(ids_behind(es, alias)) == N_DOCS - len(lost)

    restored = cli(env, "restore")
    assert restored.returncode == 0, restored.stderr
    after = current_index(es, alias)
    assert after != before and f"{before} -> {after}, {N_DOCS} documents" in restored.stdout
    assert f"alias {alias} -> {after} (was {before}, kept)" in restored.stdout
    assert f"restored missing {actions_index(alias)}" in restored.stdout
    assert es.count(index=alias)["count"] == N_DOCS
    assert ids_behind(es, alias) == ids
    assert set(es.indices.get_alias(name=alias)) == {after}, "the alias moved in one piece"
    assert es.indices.exists(index=before), "the damaged index is kept for rollback"
    assert all(targets == {after} for targets in area_alias_targets(es, alias).values())
    assert es.get(index=actions_index(alias), id="act-1")["_source"]["status"] == "published"

    # Lost altogether: the index and with it the alias. A named snapshot brings both back.
    for index in (before, after):
        es.indices.delete(index=index)
    assert not es.indices.exists_alias(name=alias)
    again = cli(env, "restore", "--snapshot", name)
    assert again.returncode == 0, again.stderr
    assert f"kept live {actions_index(alias)}" in again.stdout
    assert ids_behind(es, alias) == ids
    assert all(len(targets) == 1 for targets in area_alias_targets(es, alias).values())


def test_a_respondent_erased_after_the_snapshot_stays_erased(loaded) -> None:
    from services.ops.snapshots import create_snapshot, restore_snapshot
    from services.adapters.stores import ensure_index, erasures_index

    env, settings, es, ids = loaded
    alias = settings.index_alias
    assert ids_behind(es, alias) == ids
    snap = create_snapshot(es, alias, settings.snapshot_repository)

    # Erased after the snapshot, as services/ops/erasure.py does it: on the list, documents gone.
    erased = {i for i in ids if int(i.split("-")[1]) % len(REFS) == 1}
    ensure_index(es, alias, "erasures")
    es.index(index=erasures_index(alias), id=REFS[1], refresh=True,
             document={"respondent_ref": REFS[1], "erased_at": "2026-11-01T00:00:00Z"})
    delete_by_ids(es, alias, erased)

    result = restore_snapshot(es, alias, settings.snapshot_repository, snap.name)
    assert result.erased_again == len(erased) and result.count == N_DOCS - len(erased)
    assert erasures_index(alias) not in result.side_restored, "the live erasure list is never replaced"
    assert ids_behind(es, alias) == ids - erased


def test_failures_are_one_clear_line(loaded) -> None:
    env, settings, es, _ = loaded
    for extra, args, words in [
        ({"FEEDBACK_SNAPSHOT_REPOSITORY": "no-such-repository"}, ["snapshot"], "is not registered"),
        ({"FEEDBACK_SNAPSHOT_REPOSITORY": "no-such-repository"}, ["restore"], "is not registered"),
        ({}, ["restore", "--snapshot", "no-such-snapshot"], "no snapshot 'no-such-snapshot'"),
        ({"FEEDBACK_INDEX_ALIAS": "no-such-alias"}, ["restore"], "no successful snapshot"),
        ({"FEEDBACK_ES_URL": "http://127.0.0.1:9"}, ["snapshots"], "not reachable"),
    ]:
        proc = cli({**env, **extra}, *args)
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        assert proc.stderr.count("\n") == 1 and words in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr


def test_backup_setup_registers_the_repository_and_says_slm_is_missing(loaded) -> None:
    """The test cluster has no SLM: the repository part works, the SLM part fails clearly."""
    env, settings, es, _ = loaded
    nodes = es.nodes.info(node_id="_local", metric="settings")["nodes"]
    path_repo = next(iter(nodes.values()))["settings"]["path"]["repo"]
    path_repo = path_repo[0] if isinstance(path_repo, list) else path_repo
    repository = f"{settings.index_alias}-setup"
    try:
        proc = cli({**env, "FEEDBACK_SNAPSHOT_REPOSITORY": repository}, "backup-setup",
                   "--location", f"{path_repo}/{repository}")
        assert es.snapshot.get_repository(name=repository)[repository]["type"] == "fs"
        if proc.returncode == 0:  # a default-distribution cluster: the policy exists
            assert es.slm.get_lifecycle(policy_id=f"{settings.index_alias}-nightly")
        else:
            assert "no snapshot lifecycle management" in proc.stderr and "Traceback" not in proc.stderr
    finally:
        es.options(ignore_status=404).snapshot.delete_repository(name=repository)
