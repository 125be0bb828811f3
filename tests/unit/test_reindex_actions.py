"""The reindex's alias swap is one `_aliases` body built from the source's current aliases."""
from __future__ import annotations

from pipelines.units import service_areas
from services.ops.reindex import swap_actions


def test_swap_moves_alias_and_every_area_alias() -> None:
    areas = sorted(service_areas())
    on_source = {"feedback": {}, **{f"feedback-{a}": {} for a in areas}}
    actions = swap_actions("feedback", "feedback-v1", "feedback-v2", on_source)
    assert actions[:2] == [{"remove": {"index": "feedback-v1", "alias": "feedback"}},
                           {"add": {"index": "feedback-v2", "alias": "feedback", "is_write_index": True}}]
    removed = {a["remove"]["alias"] for a in actions[2:] if "remove" in a}
    added = {a["add"]["alias"]: a["add"] for a in actions[2:] if "add" in a}
    assert removed == set(added) == {f"feedback-{a}" for a in areas}
    for area in areas:
        assert added[f"feedback-{area}"] == {"index": "feedback-v2", "alias": f"feedback-{area}",
                                             "filter": {"term": {"service_area": area}}}


def test_swap_only_removes_area_aliases_the_source_has() -> None:
    actions = swap_actions("feedback", "feedback-v1", "feedback-v2", {"feedback": {}})
    assert [a for a in actions if "remove" in a] == [{"remove": {"index": "feedback-v1", "alias": "feedback"}}]
    assert sum("add" in a for a in actions) == 1 + len(service_areas())
