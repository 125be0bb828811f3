"""deploy/kibana/saved_objects.ndjson, offline: it parses, every reference resolves inside the
file, and every field it uses (queries, columns, sorts, Lens layers, formulas, filters) exists
in the index template with a type that use needs. Kibana itself cannot run here."""
from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
NDJSON = ROOT / "deploy" / "kibana" / "saved_objects.ndjson"
TEMPLATE = ROOT / "schemas" / "elasticsearch" / "feedback-template.json"
NUMERIC = {"long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float"}
AGGREGATABLE = {"keyword", "boolean", "date", "ip"} | NUMERIC
FORBIDDEN = {"respondent_ref", "embedding"}  # never shown in Kibana
KQL_TERM = re.compile(r'([A-Za-z_][\w.]*)\s*(:|<=|>=|<|>)\s*("(?:[^"\\]|\\.)*"|[^\s()]+)')


def _generator():
    spec = importlib.util.spec_from_file_location("kibana_gen", ROOT / "deploy" / "kibana" / "generate_saved_objects.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mapping_types() -> dict[str, str]:
    """Field path -> type of the template mapping, multi-fields included (``text.fi``)."""
    out: dict[str, str] = {}

    def walk(props: dict[str, Any], prefix: str) -> None:
        for name, spec in props.items():
            path = f"{prefix}{name}"
            out[path] = spec.get("type", "object")
            for sub, sub_spec in spec.get("fields", {}).items():
                out[f"{path}.{sub}"] = sub_spec["type"]
            if "properties" in spec:
                walk(spec["properties"], f"{path}.")

    walk(json.loads(TEMPLATE.read_text())["template"]["mappings"]["properties"], "")
    return out


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    lines = [line for line in NDJSON.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


def kql_uses(query: str) -> list[tuple[str, str]]:
    """(field, required kind) for every ``field <op> value`` in a KQL string."""
    uses = []
    for field, op, value in KQL_TERM.findall(query):
        if field.lower() in ("and", "or", "not"):
            continue
        bare = value.strip('"')
        if op != ":":
            kind = "date_or_number"
        elif bare in ("true", "false"):
            kind = "boolean"
        else:
            kind = "any"
        uses.append((field, kind))
    return uses


def field_uses(obj: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(field, required kind, where) for every field an object uses."""
    attrs, uses = obj["attributes"], []
    where = f"{obj['type']}/{obj['id']}"
    if obj["type"] == "index-pattern":
        uses.append((attrs["timeFieldName"], "date", where + " timeFieldName"))
        uses += [(f, "exists", where + " fieldAttrs") for f in json.loads(attrs.get("fieldAttrs", "{}"))]
        uses += [(f["value"], "exists", where + " sourceFilters") for f in json.loads(attrs.get("sourceFilters", "[]"))]
    if obj["type"] in ("search", "dashboard"):
        source = json.loads(attrs["kibanaSavedObjectMeta"]["searchSourceJSON"])
        uses += [(f, k, where + " query") for f, k in kql_uses(source.get("query", {}).get("query", ""))]
        for flt in source.get("filter", []):
            uses.append((flt["meta"]["key"], "any", where + " filter"))
    if obj["type"] == "search":
        uses += [(c, "shown", where + " columns") for c in attrs["columns"]]
        uses += [(f, "sortable", where + " sort") for f, _ in attrs["sort"]]
        if attrs.get("breakdownField"):
            uses.append((attrs["breakdownField"], "aggregatable", where + " breakdownField"))
    if obj["type"] == "lens":
        state = attrs["state"]
        uses += [(f, k, where + " query") for f, k in kql_uses(state["query"]["query"])]
        for layer in state["datasourceStates"]["formBased"]["layers"].values():
            for col_id, col in layer["columns"].items():
                at = f"{where} column {col_id}"
                field = col.get("sourceField")
                op = col["operationType"]
                if field and field != "___records___":
                    kind = {"date_histogram": "date", "terms": "aggregatable"}.get(op, "numeric")
                    uses.append((field, kind, at))
                if col.get("filter"):
                    uses += [(f, k, at + " filter") for f, k in kql_uses(col["filter"]["query"])]
                if op == "formula":
                    for kql in re.findall(r"kql='([^']*)'", col["params"]["formula"]):
                        uses += [(f, k, at + " formula") for f, k in kql_uses(kql)]
    return uses


def compatible(kind: str, type_: str) -> bool:
    return {
        "exists": True,
        "any": type_ not in ("nested", "object", "dense_vector"),
        "shown": type_ not in ("nested", "object", "dense_vector"),
        "date": type_ == "date",
        "numeric": type_ in NUMERIC,
        "boolean": type_ == "boolean",
        "date_or_number": type_ == "date" or type_ in NUMERIC,
        "aggregatable": type_ in AGGREGATABLE,
        "sortable": type_ in AGGREGATABLE,
    }[kind]


def test_ndjson_parses_with_unique_ids(objects) -> None:
    keys = [(o["type"], o["id"]) for o in objects]
    assert len(keys) == len(set(keys))
    for o in objects:
        assert set(o) >= {"type", "id", "attributes", "references"}
        assert o["attributes"].get("title")
        assert o["coreMigrationVersion"] == "8.8.0"
    types = {o["type"] for o in objects}
    assert types == {"index-pattern", "search", "lens", "dashboard"}


def test_every_reference_resolves(objects) -> None:
    present = {(o["type"], o["id"]) for o in objects}
    for o in objects:
        for ref in o["references"]:
            assert (ref["type"], ref["id"]) in present, (o["id"], ref)


def test_dashboard_panels_and_lens_layers_are_wired(objects) -> None:
    by_key = {(o["type"], o["id"]): o for o in objects}
    for o in objects:
        names = {r["name"] for r in o["references"]}
        if o["type"] == "dashboard":
            panels = json.loads(o["attributes"]["panelsJSON"])
            assert len(panels) == len(o["references"]) >= 5
            for p in panels:
                assert f"{p['panelIndex']}:{p['panelRefName']}" in names
                ref = next(r for r in o["references"] if r["name"] == f"{p['panelIndex']}:{p['panelRefName']}")
                assert ref["type"] == p["type"] and (ref["type"], ref["id"]) in by_key
        if o["type"] == "lens":
            state = o["attributes"]["state"]
            layers = state["datasourceStates"]["formBased"]["layers"]
            for layer_id, layer in layers.items():
                assert f"indexpattern-datasource-layer-{layer_id}" in names
                assert set(layer["columnOrder"]) == set(layer["columns"])
                for col in layer["columns"].values():
                    assert set(col.get("references", [])) <= set(layer["columns"])
                    order_by = col.get("params", {}).get("orderBy", {})
                    if order_by.get("type") == "column":
                        assert order_by["columnId"] in layer["columns"]
            for vis_layer in state["visualization"]["layers"]:
                cols = layers[vis_layer["layerId"]]["columns"]
                for acc in [vis_layer["xAccessor"], *vis_layer["accessors"], vis_layer.get("splitAccessor")]:
                    assert acc is None or acc in cols


def test_every_field_exists_with_a_compatible_type(objects) -> None:
    types = mapping_types()
    checked = 0
    for o in objects:
        for field, kind, where in field_uses(o):
            assert field in types, f"{where}: {field} is not in the index mapping"
            assert compatible(kind, types[field]), f"{where}: {field} is {types[field]}, needs {kind}"
            if kind not in ("exists",):
                assert field not in FORBIDDEN, f"{where}: {field} must never be shown"
            checked += 1
    assert checked > 40


def test_required_views_are_there(objects) -> None:
    by_id = {o["id"]: o for o in objects}
    view = by_id["feedback-data-view"]["attributes"]
    assert view["title"] == "feedback" and view["timeFieldName"] == "received_at"
    queries = {i: json.loads(o["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])["query"]["query"]
               for i, o in by_id.items() if o["type"] == "search"}
    assert 'sentiment : "negative"' in queries["feedback-negative-this-week"]
    assert by_id["feedback-negative-this-week"]["attributes"]["timeRange"]["from"] == "now/w"
    assert queries["feedback-urgent"] == "urgent : true"
    assert 'received_at < "now-30d"' in queries["feedback-unanswered-30d"]
    lens_fields = {c.get("sourceField") for o in objects if o["type"] == "lens"
                   for layer in o["attributes"]["state"]["datasourceStates"]["formBased"]["layers"].values()
                   for c in layer["columns"].values()}
    assert {"channel", "sentiment", "theme_labels_fi", "unit_name", "received_at"} <= lens_fields


def test_file_is_what_the_generator_writes() -> None:
    gen = _generator()
    assert NDJSON.read_text(encoding="utf-8") == gen.render(), \
        "stale: run python deploy/kibana/generate_saved_objects.py"


def test_area_variant_reads_the_filtered_alias() -> None:
    gen = _generator()
    objs = [json.loads(line) for line in gen.render(area="emergency").splitlines()]
    view = next(o for o in objs if o["type"] == "index-pattern")
    assert view["attributes"]["title"] == "feedback-emergency" and view["id"] == "feedback-data-view"
    assert [(o["type"], o["id"]) for o in objs] == [(o["type"], o["id"]) for o in gen.build()]


def test_kql_parser() -> None:
    assert kql_uses('closure_status : "open" and received_at < "now-30d" and not is_duplicate : true') == [
        ("closure_status", "any"), ("received_at", "date_or_number"), ("is_duplicate", "boolean")]
