"""Pure search query builders: filters, language routing, RRF, cursors, aggregation rows."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from pipelines import search as q
from pipelines.documents import iso_week, to_document, upgrade_document
from pipelines.synthetic import enriched_event
from schemas.validate import event_errors


def test_filter_clauses_cover_every_facet() -> None:
    f = q.Filters(units=("turku-ed", "salo-ed"), service_areas=("emergency",), channels=("app",),
                  themes=("access_waiting",), sentiments=("negative",), languages=("fi",),
                  closure_status=("open",), urgent=True, received_from="2026-10-01T00:00:00Z",
                  received_to="2026-10-31T23:59:59Z", include_duplicates=False)
    clauses = q.filter_clauses(f)
    assert {"terms": {"unit": ["salo-ed", "turku-ed"]}} in clauses
    assert {"terms": {"theme_codes": ["access_waiting"]}} in clauses
    assert {"term": {"urgent": True}} in clauses
    assert {"range": {"received_at": {"gte": "2026-10-01T00:00:00Z", "lte": "2026-10-31T23:59:59Z"}}} in clauses
    assert {"bool": {"must_not": [{"term": {"is_duplicate": True}}]}} in clauses
    assert q.filter_clauses(q.Filters()) == []


def test_text_query_with_language_uses_that_languages_fields() -> None:
    fi = q.text_query("jono", "fi")
    assert fi["bool"]["filter"] == [{"term": {"language": "fi"}}]
    assert fi["bool"]["must"][0]["multi_match"]["fields"] == ["text.fi", "text.fi_light"]
    sv = q.text_query("kö", "sv")
    assert sv["bool"]["must"][0] == {"match": {"text.sv": {"query": "kö"}}}


def test_text_query_without_language_matches_each_language_with_its_analyzer() -> None:
    body = q.text_query("jono")
    should = body["bool"]["should"]
    assert body["bool"]["minimum_should_match"] == 1
    langs = [c["bool"]["filter"][0]["term"]["language"] for c in should[:3]]
    assert langs == ["fi", "sv", "en"]
    assert should[3]["bool"]["must_not"] == [{"terms": {"language": ["fi", "sv", "en"]}}]
    assert should[3]["bool"]["must"] == [{"match": {"text": {"query": "jono"}}}]


def test_keyword_body_never_asks_for_personal_fields() -> None:
    body = q.keyword_body("jono", None, q.Filters(), 10)
    assert not q.FORBIDDEN_FIELDS & set(body["_source"])
    assert body["sort"][-1] == {"feedback_id": "asc"}
    browse = q.keyword_body(None, None, q.Filters(), 10, sort="oldest")
    assert "must" not in browse["query"]["bool"]
    assert browse["sort"] == [{"received_at": "asc"}, {"feedback_id": "asc"}]


def test_knn_body_filters_inside_knn_and_excludes_ids() -> None:
    body = q.knn_body([0.1] * 4, q.Filters(units=("turku-ed",)), size=10, offset=20, exclude_ids=["a"])
    knn = body["knn"]
    assert knn["k"] == 30 and body["from"] == 20 and body["size"] == 10
    assert knn["num_candidates"] >= knn["k"]
    assert {"terms": {"unit": ["turku-ed"]}} in knn["filter"]["bool"]["filter"]
    assert {"bool": {"must_not": [{"ids": {"values": ["a"]}}]}} in knn["filter"]["bool"]["filter"]
    assert "filter" not in q.knn_clause([0.1], q.Filters(), 5)


def test_rrf_rewards_agreement_and_is_deterministic() -> None:
    fused = q.rrf([["a", "b", "c"], ["c", "a", "d"]])
    ids = [i for i, _ in fused]
    assert ids[0] == "a"  # ranks 1 and 2
    assert ids[1] == "c"  # ranks 3 and 1
    assert set(ids) == {"a", "b", "c", "d"}
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)
    # b (rank 2 once) and d (rank 3 once): b first; equal scores fall back to best rank then id
    assert ids.index("b") < ids.index("d")
    assert q.rrf([["x", "y"], ["y", "x"]]) == q.rrf([["y", "x"], ["x", "y"]])


def test_fuse_page_slices_and_reports_more() -> None:
    page = q.fuse_page(["a", "b", "c"], ["c", "d"], offset=0, size=2)
    assert page.ids == ["c", "a"] and page.more
    last = q.fuse_page(["a", "b", "c"], ["c", "d"], offset=2, size=2)
    assert last.ids == ["b", "d"] and not last.more


def test_cursor_round_trip_and_binding() -> None:
    fp = q.query_fingerprint({"q": "jono", "mode": "keyword"})
    token = q.encode_cursor(fp, search_after=[1.5, 1761955200000, "abc"])
    assert q.decode_cursor(token, fp) == {"search_after": [1.5, 1761955200000, "abc"]}
    assert q.decode_cursor(q.encode_cursor(fp, offset=40), fp) == {"offset": 40}
    other = q.query_fingerprint({"q": "kö", "mode": "keyword"})
    with pytest.raises(q.CursorError, match="different query"):
        q.decode_cursor(token, other)
    for bad in ("not-base64!!", "e30", q.encode_cursor(fp, offset=10**6)):
        with pytest.raises(q.CursorError):
            q.decode_cursor(bad, fp)


def test_fingerprint_ignores_key_order() -> None:
    assert q.query_fingerprint({"a": 1, "b": [1, 2]}) == q.query_fingerprint({"b": [1, 2], "a": 1})


def test_aggregation_rows() -> None:
    aggs = {
        "themes": {"buckets": [{"key": "access_waiting", "doc_count": 3, "sentiment": {"buckets": [
            {"key": "negative", "doc_count": 3, "period": {"buckets": [
                {"key_as_string": "2026-10-26", "doc_count": 2}, {"key_as_string": "2026-11-02", "doc_count": 0},
                {"key_as_string": "2026-11-09", "doc_count": 1}]}}]}}]},
        "units": {"buckets": [{"key": "turku-ed", "doc_count": 4,
                               "sentiment": {"buckets": [{"key": "negative", "doc_count": 3},
                                                         {"key": "positive", "doc_count": 1}]},
                               "urgent": {"doc_count": 1}, "closed": {"doc_count": 1},
                               "hours_to_closure": {"value": 12.345},
                               "top_themes": {"buckets": [{"key": "access_waiting", "doc_count": 3}]}}]},
    }
    rows = q.theme_sentiment_rows(aggs)
    assert rows == [
        {"theme": "access_waiting", "sentiment": "negative", "period_start": "2026-10-26", "period": "2026-W44",
         "count": 2},
        {"theme": "access_waiting", "sentiment": "negative", "period_start": "2026-11-09", "period": "2026-W46",
         "count": 1},
    ]
    (unit,) = q.unit_rows(aggs)
    assert unit["closure_rate"] == 0.25 and unit["neutral"] == 0 and unit["avg_hours_to_closure"] == 12.35
    assert q.period_label("2026-10-26", "month") == "2026-10"
    assert q.period_label("2026-10-26", "day") == "2026-10-26"


def test_aggregations_body_uses_helsinki_weeks() -> None:
    body = q.aggregations_body({"match_all": {}})
    hist = body["aggs"]["themes"]["aggs"]["sentiment"]["aggs"]["period"]["date_histogram"]
    assert hist["calendar_interval"] == "week" and hist["time_zone"] == "Europe/Helsinki"
    assert body["size"] == 0


def test_safe_source_drops_personal_fields() -> None:
    assert q.safe_source({"feedback_id": "x", "respondent_ref": "r", "embedding": [0.1]}) == {"feedback_id": "x"}


def test_week_is_helsinki_iso_week() -> None:
    # Sunday 23:30 UTC is already Monday in Helsinki (UTC+2 in November)
    assert iso_week("2026-11-01T22:30:00Z") == "2026-W45"
    assert iso_week("2026-11-01T21:30:00Z") == "2026-W44"
    assert upgrade_document({"received_at": "2026-11-01T21:30:00Z"})["week"] == "2026-W44"
    assert upgrade_document({"received_at": "x", "week": "kept"})["week"] == "kept"


def test_synthetic_event_is_schema_valid_and_indexable() -> None:
    ev = enriched_event(unit="turku-ed", text="Jono oli pitkä", language="fi", theme_codes=["access_waiting"],
                        sentiment="negative", received_at=datetime(2026, 11, 2, 8, tzinfo=timezone.utc),
                        embedding=[0.5] * 8, respondent_ref="ref-1")
    assert event_errors("feedback.enriched", ev) == []
    doc = to_document(ev)
    assert doc["week"] == "2026-W45" and doc["service_area"] == "emergency"
    json.dumps(doc)


def test_highlights_are_html_encoded():
    from pipelines.search import highlight_spec

    for language in (None, "fi", "sv", "en"):
        spec = highlight_spec(language)
        assert spec["encoder"] == "html" and spec["pre_tags"] == ["<em>"], language
