"""Snapshot naming, picking the latest, restore plans and the SLM policy (no servers)."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from pipelines.snapshots import (
    SnapshotError,
    SnapshotInfo,
    next_version,
    of_alias,
    pick_latest,
    plan_restore,
    rename_rule,
    slm_policy,
    snapshot_name,
    versioned_indices,
)

SIDE = ["feedback-actions", "feedback-erasures"]


def snap(name: str, start_ms: int, indices: tuple[str, ...] = ("feedback-v1",), state: str = "SUCCESS",
         **metadata) -> SnapshotInfo:
    return SnapshotInfo(name=name, state=state, start_ms=start_ms, indices=indices, metadata=metadata)


def test_snapshot_names_are_lower_case_sortable_and_utc():
    helsinki = timezone(timedelta(hours=2))
    a = snapshot_name("Feedback", datetime(2026, 1, 5, 3, 4, 5, 678_000, tzinfo=helsinki))
    b = snapshot_name("Feedback", datetime(2026, 1, 5, 3, 4, 6, tzinfo=helsinki))
    assert a == "feedback-20260105-010405-678"
    assert a < b and a == a.lower() and re.fullmatch(r"[a-z0-9-]+", a)


def test_versioned_indices_and_next_version_match_only_the_alias():
    names = ["feedback-v2", "feedback-v10", "feedback-actions", "feedback-x-v3", "other-v9", "feedback-v1-old"]
    assert versioned_indices("feedback", names) == ["feedback-v2", "feedback-v10"]
    assert next_version("feedback", names) == "feedback-v11"
    assert next_version("feedback", []) == "feedback-v1"


def test_from_es_reads_the_fields_we_use():
    info = SnapshotInfo.from_es({"snapshot": "s1", "state": "SUCCESS", "start_time_in_millis": 1767225600000,
                                 "indices": ["feedback-erasures", "feedback-v1"],
                                 "metadata": {"counts": {"feedback-v1": 3}}})
    assert info.indices == ("feedback-erasures", "feedback-v1")
    assert info.started == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert info.metadata["counts"] == {"feedback-v1": 3}


def test_pick_latest_takes_the_newest_successful_snapshot_of_the_alias():
    snaps = [
        snap("old", 1000),
        snap("newest-but-partial", 5000, state="PARTIAL"),
        snap("other-alias", 6000, indices=("other-v1",)),
        snap("new", 4000, indices=("feedback-v2", "feedback-actions")),
        snap("failed", 7000, state="FAILED"),
    ]
    assert pick_latest("feedback", snaps).name == "new"
    assert [s.name for s in of_alias("feedback", snaps)] == ["old", "new", "newest-but-partial", "failed"]
    assert pick_latest("feedback", [snaps[2]]) is None
    assert pick_latest("feedback", []) is None


def test_rename_rule_renames_exactly_one_index():
    pattern, replacement = rename_rule("feedback-v1", "feedback-v3")
    assert re.sub(pattern, replacement, "feedback-v1") == "feedback-v3"
    for untouched in ("feedback-v10", "feedback-actions", "xfeedback-v1", "feedbackXv1"):
        assert re.sub(pattern, replacement, untouched) == untouched


def test_plan_restores_into_a_new_version_and_only_missing_side_indices():
    s = snap("s", 1, indices=("feedback-actions", "feedback-erasures", "feedback-v1"), counts={"feedback-v1": 7})
    plan = plan_restore("feedback", s, ["feedback-v1", "feedback-v2", "feedback-erasures"], SIDE)
    assert (plan.source, plan.target) == ("feedback-v1", "feedback-v3")
    assert plan.side_restore == ("feedback-actions",) and plan.side_kept == ("feedback-erasures",)
    assert plan.indices == ["feedback-v1", "feedback-actions"]
    assert plan.expected_count == 7


def test_plan_after_the_index_is_gone_still_uses_a_fresh_name():
    plan = plan_restore("feedback", snap("s", 1, indices=("feedback-v4",)), [], SIDE)
    assert plan.target == "feedback-v5" and plan.side_restore == () and plan.expected_count is None


@pytest.mark.parametrize("bad, words", [
    (snap("p", 1, state="PARTIAL"), "PARTIAL"),
    (snap("none", 1, indices=("feedback-actions",)), "0 versions"),
    (snap("two", 1, indices=("feedback-v1", "feedback-v2")), "2 versions"),
])
def test_plan_refuses_unusable_snapshots(bad, words):
    with pytest.raises(SnapshotError, match=words):
        plan_restore("feedback", bad, [], SIDE)


def test_slm_policy_snapshots_alias_and_side_indices_with_retention():
    policy = slm_policy("feedback", "feedback-backups", SIDE, schedule="0 0 2 * * ?", max_count=30)
    assert policy["repository"] == "feedback-backups"
    assert policy["schedule"] == "0 0 2 * * ?"
    assert policy["name"] == "<feedback-nightly-{now/d}>"
    assert policy["config"]["indices"] == ["feedback", *SIDE]
    assert policy["config"]["include_global_state"] is False and policy["config"]["ignore_unavailable"] is True
    assert policy["retention"] == {"expire_after": "30d", "min_count": 7, "max_count": 30}
    with pytest.raises(SnapshotError):
        slm_policy("feedback", "r", SIDE, min_count=10, max_count=5)


def test_every_side_index_is_in_the_snapshots():
    # The erasure list and leads' decisions (urgent acknowledgements, picks, taxonomy changes)
    # exist nowhere else: a new side index is backed up without anyone remembering to add it.
    from services.adapters.stores import SIDE_INDICES, actions_index, erasures_index, taxonomy_changes_index
    from services.ops.snapshots import side_indices

    names = side_indices("feedback")
    assert names == [f"feedback-{kind}" for kind in SIDE_INDICES]
    assert {actions_index("feedback"), erasures_index("feedback"), taxonomy_changes_index("feedback")} <= set(names)
