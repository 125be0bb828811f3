#!/usr/bin/env python3
"""Write deploy/kibana/saved_objects.ndjson: the service leads' Kibana objects (Kibana 8.19).

    python deploy/kibana/generate_saved_objects.py                 # rewrite saved_objects.ndjson
    python deploy/kibana/generate_saved_objects.py --check         # exit 1 if the file is stale
    python deploy/kibana/generate_saved_objects.py --area emergency > emergency.ndjson
    python deploy/kibana/generate_saved_objects.py --alias other > other.ndjson

One data view on the alias, three saved searches, five Lens charts and a dashboard,
all with fixed ids so `_import?overwrite=true` updates them in place. ``--area`` writes
the same objects for one service area's Kibana space: the data view reads that area's
filtered alias (``feedback-<area>``) instead (see README.md and ROLES.md).
Lens and saved-search JSON is verbose and easy to get subtly wrong by hand, so it is
built here; tests/unit/test_kibana_objects.py checks the file against the index mapping.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).resolve().parent / "saved_objects.ndjson"
ALIAS = "feedback"
DATA_VIEW_ID = "feedback-data-view"
CORE_MIGRATION = "8.8.0"
# typeMigrationVersion of each type in the shape written here; Kibana 8.19 migrates from these.
TYPE_MIGRATION = {"index-pattern": "8.0.0", "search": "8.0.0", "lens": "8.9.0", "dashboard": "8.7.0"}
COUNT = "___records___"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def saved_object(type_: str, id_: str, attributes: dict[str, Any], references: list[dict[str, str]]) -> dict[str, Any]:
    return {"type": type_, "id": id_, "attributes": attributes, "references": references, "managed": False,
            "coreMigrationVersion": CORE_MIGRATION, "typeMigrationVersion": TYPE_MIGRATION[type_]}


def data_view(alias: str, area: str | None) -> dict[str, Any]:
    title = f"{alias}-{area}" if area else alias
    return saved_object("index-pattern", DATA_VIEW_ID, {
        "title": title,
        "name": f"Resident feedback ({area})" if area else "Resident feedback",
        "timeFieldName": "received_at",
        # Discover must not show these even to someone who can read them.
        "sourceFilters": _json([{"value": "respondent_ref"}, {"value": "embedding"}]),
        "fieldAttrs": _json({"unit_name": {"customLabel": "Unit"}, "primary_theme": {"customLabel": "Main theme"},
                             "theme_labels_fi": {"customLabel": "Teema"}, "closure_status": {"customLabel": "Closure"}}),
        "allowNoIndex": True,
    }, [])


def _search_source(query: str) -> str:
    return _json({"query": {"query": query, "language": "kuery"}, "filter": [], "highlightAll": True,
                  "indexRefName": "kibanaSavedObjectMeta.searchSourceJSON.index"})


def saved_search(id_: str, title: str, description: str, query: str, columns: list[str],
                 sort: list[list[str]], time_from: str, breakdown: str | None = None) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "title": title, "description": description, "columns": columns, "sort": sort, "grid": {},
        "hideChart": False, "isTextBasedQuery": False, "timeRestore": True,
        "timeRange": {"from": time_from, "to": "now"}, "refreshInterval": {"pause": True, "value": 60000},
        "kibanaSavedObjectMeta": {"searchSourceJSON": _search_source(query)},
    }
    if breakdown:
        attrs["breakdownField"] = breakdown
    return saved_object("search", id_, attrs, [{"type": "index-pattern", "id": DATA_VIEW_ID,
                                                "name": "kibanaSavedObjectMeta.searchSourceJSON.index"}])


# --- Lens columns -----------------------------------------------------------------------

def count_col(label: str = "Feedback", kql: str | None = None) -> dict[str, Any]:
    col: dict[str, Any] = {"label": label, "dataType": "number", "operationType": "count", "isBucketed": False,
                           "scale": "ratio", "sourceField": COUNT, "params": {"emptyAsNull": True},
                           "customLabel": True}
    if kql:
        col["filter"] = {"query": kql, "language": "kuery"}
    return col


def date_col(field: str = "received_at", interval: str = "auto") -> dict[str, Any]:
    return {"label": field, "dataType": "date", "operationType": "date_histogram", "sourceField": field,
            "isBucketed": True, "scale": "interval",
            "params": {"interval": interval, "includeEmptyRows": True, "dropPartials": False}}


def terms_col(field: str, size: int, order_by: str, label: str | None = None, other: bool = True) -> dict[str, Any]:
    return {"label": label or f"Top {size} values of {field}", "dataType": "string", "operationType": "terms",
            "scale": "ordinal", "sourceField": field, "isBucketed": True, "customLabel": label is not None,
            "params": {"size": size, "orderBy": {"type": "column", "columnId": order_by}, "orderDirection": "desc",
                       "otherBucket": other, "missingBucket": False, "parentFormat": {"id": "terms"},
                       "include": [], "exclude": [], "includeIsRegex": False, "excludeIsRegex": False}}


def average_col(field: str, label: str) -> dict[str, Any]:
    return {"label": label, "dataType": "number", "operationType": "average", "sourceField": field,
            "isBucketed": False, "scale": "ratio", "params": {"emptyAsNull": True}, "customLabel": True}


def ratio_formula(col_id: str, label: str, numerator_kql: str) -> dict[str, dict[str, Any]]:
    """A Lens formula ``count(kql='...') / count()`` with the helper columns Lens stores."""
    formula = f"count(kql='{numerator_kql}') / count()"
    num, den, math = f"{col_id}X0", f"{col_id}X1", f"{col_id}X2"
    part = f"Part of {formula}"
    return {
        num: {**count_col(part, numerator_kql), "params": {"emptyAsNull": False}},
        den: {**count_col(part), "params": {"emptyAsNull": False}},
        math: {"label": part, "dataType": "number", "operationType": "math", "isBucketed": False, "scale": "ratio",
               "params": {"tinymathAst": {"type": "function", "name": "divide", "args": [num, den],
                                          "location": {"min": 0, "max": len(formula)}, "text": formula}},
               "references": [num, den], "customLabel": True},
        col_id: {"label": label, "dataType": "number", "operationType": "formula", "isBucketed": False,
                 "scale": "ratio", "params": {"formula": formula, "isFormulaBroken": False,
                                              "format": {"id": "percent", "params": {"decimals": 0}}},
                 "references": [math], "customLabel": True},
    }


def lens_xy(id_: str, title: str, description: str, layer: str, columns: dict[str, dict[str, Any]],
            column_order: list[str], series: str, x: str, y: list[str], split: str | None = None,
            query: str = "") -> dict[str, Any]:
    vis_layer: dict[str, Any] = {"layerId": layer, "layerType": "data", "seriesType": series, "xAccessor": x,
                                 "accessors": y, "position": "top", "showGridlines": False}
    if split:
        vis_layer["splitAccessor"] = split
        vis_layer["palette"] = {"type": "palette", "name": "default"}
    state = {
        "visualization": {"legend": {"isVisible": True, "position": "right"}, "valueLabels": "hide",
                          "fittingFunction": "None", "preferredSeriesType": series, "layers": [vis_layer],
                          "axisTitlesVisibilitySettings": {"x": True, "yLeft": True, "yRight": True},
                          "tickLabelsVisibilitySettings": {"x": True, "yLeft": True, "yRight": True},
                          "gridlinesVisibilitySettings": {"x": True, "yLeft": True, "yRight": True}},
        "query": {"query": query, "language": "kuery"},
        "filters": [],
        "datasourceStates": {"formBased": {"layers": {layer: {
            "columns": columns, "columnOrder": column_order, "incompleteColumns": {}, "sampling": 1}}},
            "textBased": {"layers": {}}},
        "internalReferences": [],
        "adHocDataViews": {},
    }
    return saved_object("lens", id_, {"title": title, "description": description, "visualizationType": "lnsXY",
                                      "state": state},
                        [{"type": "index-pattern", "id": DATA_VIEW_ID, "name": f"indexpattern-datasource-layer-{layer}"}])


def charts() -> list[dict[str, Any]]:
    volume = lens_xy(
        "feedback-volume-by-channel", "Feedback volume by channel", "Items received per day, by channel.",
        "layer-volume",
        {"channel": terms_col("channel", 3, "count", "Channel"), "time": date_col(), "count": count_col()},
        ["channel", "time", "count"], "bar_stacked", x="time", y=["count"], split="channel")
    themes = lens_xy(
        "feedback-theme-by-sentiment", "Themes by sentiment", "How each theme splits into negative, neutral "
        "and positive feedback (an item with two themes counts under both).",
        "layer-themes",
        {"theme": terms_col("theme_labels_fi", 20, "count", "Teema", other=False),
         "sentiment": terms_col("sentiment", 3, "count", "Sentiment", other=False), "count": count_col()},
        ["theme", "sentiment", "count"], "bar_horizontal_stacked", x="theme", y=["count"], split="sentiment")
    sentiment_trend = lens_xy(
        "feedback-sentiment-trend", "Weekly trend by sentiment", "Items per week, one line per sentiment.",
        "layer-sentiment-trend",
        {"sentiment": terms_col("sentiment", 3, "count", "Sentiment", other=False), "week": date_col(interval="1w"),
         "count": count_col()},
        ["sentiment", "week", "count"], "line", x="week", y=["count"], split="sentiment")
    theme_trend = lens_xy(
        "feedback-theme-trend", "Weekly trend of the main themes", "Items per week for the eight most common "
        "main themes.", "layer-theme-trend",
        {"theme": terms_col("primary_theme", 8, "count", "Main theme", other=False), "week": date_col(interval="1w"),
         "count": count_col()},
        ["theme", "week", "count"], "line", x="week", y=["count"], split="theme")
    closure_cols = {"unit": terms_col("unit_name", 50, "rate", "Unit", other=False),
                    **ratio_formula("rate", "Closure rate", 'closure_status : "closed"')}
    closure = lens_xy(
        "feedback-closure-rate-by-unit", "Closure rate per unit", "Share of each unit's feedback answered by a "
        "\"you said, we did\" action.", "layer-closure",
        closure_cols, ["unit", "rate", "rateX0", "rateX1", "rateX2"], "bar_horizontal", x="unit", y=["rate"])
    return [volume, themes, sentiment_trend, theme_trend, closure]


def searches() -> list[dict[str, Any]]:
    return [
        saved_search("feedback-negative-this-week", "Negative feedback this week, by unit",
                     "Negative feedback since Monday, grouped by unit (histogram broken down by unit).",
                     'sentiment : "negative" and not is_duplicate : true',
                     ["unit_name", "primary_theme", "text", "channel", "closure_status"],
                     [["unit", "asc"], ["received_at", "desc"]], "now/w", breakdown="unit"),
        saved_search("feedback-urgent", "Urgent items",
                     "Safeguarding, self-harm and threats flagged by the enricher; act on these first.",
                     "urgent : true",
                     ["unit_name", "service_area", "text", "urgency_reasons", "closure_status"],
                     [["received_at", "desc"]], "now-30d"),
        saved_search("feedback-unanswered-30d", "Unanswered feedback older than 30 days",
                     "Open feedback (no \"you said, we did\" action yet) received more than 30 days ago.",
                     'closure_status : "open" and received_at < "now-30d" and not is_duplicate : true',
                     ["unit_name", "primary_theme", "sentiment", "text", "received_at"],
                     [["received_at", "asc"]], "now-1y"),
    ]


def dashboard(panels: list[tuple[dict[str, Any], dict[str, int]]]) -> dict[str, Any]:
    panel_json, refs = [], []
    for i, (obj, grid) in enumerate(panels, start=1):
        idx = str(i)
        panel_json.append({"version": "8.19.0", "type": obj["type"], "gridData": {**grid, "i": idx},
                           "panelIndex": idx, "embeddableConfig": {"enhancements": {}},
                           "panelRefName": f"panel_{idx}"})
        refs.append({"name": f"{idx}:panel_{idx}", "type": obj["type"], "id": obj["id"]})
    return saved_object("dashboard", "feedback-overview", {
        "title": "Resident feedback overview",
        "description": "Volume by channel, themes by sentiment, weekly trends, closure rate per unit, urgent items.",
        "panelsJSON": _json(panel_json),
        "optionsJSON": _json({"useMargins": True, "syncColors": True, "syncCursor": True, "syncTooltips": False,
                              "hidePanelTitles": False}),
        "timeRestore": True, "timeFrom": "now-90d", "timeTo": "now",
        "refreshInterval": {"pause": True, "value": 60000},
        "kibanaSavedObjectMeta": {"searchSourceJSON": _json({"query": {"query": "", "language": "kuery"},
                                                             "filter": []})},
    }, refs)


def build(alias: str = ALIAS, area: str | None = None) -> list[dict[str, Any]]:
    """Every object, dependencies first (the import resolves references within the file)."""
    volume, themes, sentiment_trend, theme_trend, closure = charts()
    negative, urgent, unanswered = searches()
    board = dashboard([
        (volume, {"x": 0, "y": 0, "w": 24, "h": 14}), (themes, {"x": 24, "y": 0, "w": 24, "h": 14}),
        (sentiment_trend, {"x": 0, "y": 14, "w": 24, "h": 14}), (theme_trend, {"x": 24, "y": 14, "w": 24, "h": 14}),
        (closure, {"x": 0, "y": 28, "w": 24, "h": 16}), (urgent, {"x": 24, "y": 28, "w": 24, "h": 16}),
    ])
    return [data_view(alias, area), negative, urgent, unanswered, volume, themes, sentiment_trend, theme_trend,
            closure, board]


def render(alias: str = ALIAS, area: str | None = None) -> str:
    return "".join(_json(o) + "\n" for o in build(alias, area))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if saved_objects.ndjson is stale")
    parser.add_argument("--area", help="write one service area's objects to stdout (its filtered alias)")
    parser.add_argument("--alias", default=ALIAS, help="index alias (settings.index_alias)")
    args = parser.parse_args()
    if args.area or args.alias != ALIAS:  # variants go to stdout; the committed file is for `feedback`
        sys.stdout.write(render(args.alias, args.area))
        return 0
    text = render(args.alias)
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text(encoding="utf-8") != text:
            print(f"{OUTPUT} is stale: run python {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT} ({text.count(chr(10))} objects)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
