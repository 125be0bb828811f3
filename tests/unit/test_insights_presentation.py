"""What leads and operators read of the insights: the console's bars, the index rows, the CLI table."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from pipelines.drivers import Driver, DriverResult
from services.apps.insights_console import PromoteIn, bar
from services.cli.insights import drivers_table
from services.ops.insights import driver_documents


def _driver(theme: str, effect: float, prevalence: float, lo: float, hi: float) -> Driver:
    return Driver(theme=theme, n=40, prevalence=prevalence, effect=effect, effect_low=lo, effect_high=hi,
                  impact=round(effect * prevalence, 2), impact_low=round(lo * prevalence, 2),
                  impact_high=round(hi * prevalence, 2))


def test_bars_start_at_zero_in_the_middle_and_point_the_way_of_the_impact():
    worse = bar({"impact": -5.0, "impact_low": -6.0, "impact_high": -4.0}, scale=6.0, width=240)
    assert worse["x"] + worse["w"] == worse["mid"] == 120 and worse["lo"] < worse["x"] + 1
    better = bar({"impact": 3.0, "impact_low": 2.0, "impact_high": 4.0}, scale=6.0, width=240)
    assert better["x"] == 120 and better["w"] > 0 and better["hi"] > better["x"]
    flat = bar({"impact": 0.0, "impact_low": 0.0, "impact_high": 0.0}, scale=0.0)
    assert flat["w"] == 1.0  # still drawn, as a hairline


def test_index_rows_carry_the_area_and_say_why_nothing_is_ranked():
    run = {"run_id": "r", "computed_at": "2026-11-20T06:00:00Z"}
    short = DriverResult(n=12, outcome="sentiment", mean=40.0, insufficient="12 documents with a sentiment; at "
                                                                            "least 50 are needed")
    (row,) = driver_documents(run, "unit", "raisio-hc", "primary-care", short)
    assert row["status"] == "insufficient_data" and row["theme"] is None and row["service_area"] == "primary-care"
    ranked = DriverResult(n=80, outcome="rating", mean=60.0,
                          drivers=(_driver("access_waiting", -20.0, 0.4, -25.0, -15.0),), too_rare={"food": 2})
    rows = driver_documents(run, "service_area", "emergency", "emergency", ranked)
    assert [(r["theme"], r.get("rank"), r.get("too_rare")) for r in rows] == [
        (None, None, None), ("access_waiting", 1, False), ("food", None, True)]
    assert rows[1]["theme_label_fi"] == "Pääsy hoitoon ja odotusajat" and rows[1]["clear"] is True
    assert all("text" not in r for r in rows)


def test_the_cli_table_names_units_and_marks_unclear_effects():
    class Report:
        period_from, period_to = "2026-08-22T06:00:00Z", "2026-11-20T06:00:00Z"
        groups = {("unit", "turku-ed"): DriverResult(
            n=80, outcome="rating", mean=60.0, drivers=(_driver("access_waiting", -20.0, 0.4, -25.0, -15.0),
                                                        _driver("transport_parking", 1.0, 0.2, -2.0, 3.0)))}

    table = drivers_table(Report())
    assert "unit turku-ed (Turun yhteispäivystys): 80 with rating, mean 60.0" in table
    lines = table.splitlines()
    assert "Access and waiting times" in lines[4] and "[-25.0, -15.0]" in lines[4] and "not clear" not in lines[4]
    assert "Transport and parking" in lines[5] and "(not clear)" in lines[5]


def test_a_promotion_needs_a_code_names_and_a_finnish_prototype():
    ok = PromoteIn(code="entrance_smoking", fi="Tupakointi sisäänkäynnillä", sv="Rökning vid entrén",
                   en="Smoking at the entrance", prototypes_fi=["Ovella tupakoidaan."])
    assert ok.prototypes_sv == []
    with pytest.raises(ValidationError) as err:
        PromoteIn(code="Entrance smoking", fi="x", sv="y", en="z", prototypes_fi=[])
    fields = {e["loc"][0] for e in err.value.errors()}
    assert {"code", "prototypes_fi"} <= fields
