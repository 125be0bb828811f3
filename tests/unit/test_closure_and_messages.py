"""Closure matching, grouping into notifications, closure updates and message rendering."""
from __future__ import annotations

from pipelines.closure import closure_update, matching_query, notification_id, recipients
from pipelines.messages import pick_language, render

ACTION = {"action_id": "a1", "unit": "turku-ed", "themes": ["access_waiting"],
          "period": {"from": "2026-10-01T00:00:00Z", "to": "2026-11-30T00:00:00Z"},
          "published_at": "2026-11-02T12:00:00Z", "messages": {"fi": "Teimme näin."}}


def doc(fid, ref, consent, lang="fi", at="2026-11-01T12:00:00Z", **kw):
    return {"feedback_id": fid, "respondent_ref": ref, "follow_up_consent": consent, "language": lang,
            "received_at": at, **kw}


def test_one_recipient_per_consenting_respondent():
    docs = [doc("f1", "r_1", True), doc("f2", "r_1", True, lang="sv", at="2026-11-01T13:00:00Z"),
            doc("f3", "r_2", False), doc("f4", None, True), doc("f5", "r_3", True, lang="en")]
    people = recipients(docs)
    assert [p.respondent_ref for p in people] == ["r_1", "r_3"]
    assert people[0].feedback_ids == ("f1", "f2") and people[0].language == "sv"


def test_notification_ids_are_deterministic():
    assert notification_id("a1", "r_1") == notification_id("a1", "r_1") != notification_id("a2", "r_1")


def test_matching_query_filters_unit_themes_and_period():
    q = matching_query(ACTION)["bool"]["filter"]
    assert {"term": {"unit": "turku-ed"}} in q and {"terms": {"theme_codes": ["access_waiting"]}} in q
    # The period applies to when the feedback was given: submitted_at, else received_at.
    given = q[2]["bool"]["should"]
    assert given[0] == {"range": {"submitted_at": {"gte": "2026-10-01T00:00:00Z", "lte": "2026-11-30T00:00:00Z"}}}
    assert given[1]["bool"]["must_not"] == [{"exists": {"field": "submitted_at"}}]


def test_closure_update_is_idempotent_and_measures_time():
    u = closure_update(doc("f1", "r_1", True), ACTION)
    assert u == {"closure_status": "closed", "closure_action_ids": ["a1"], "closed_at": ACTION["published_at"],
                 "hours_to_closure": 24.0}
    assert closure_update(doc("f1", "r_1", True, closure_action_ids=["a1"]), ACTION) is None
    second = closure_update(doc("f1", "r_1", True, closure_action_ids=["a0"], closed_at="x"), ACTION)
    assert second == {"closure_status": "closed", "closure_action_ids": ["a0", "a1"]}


def test_messages_render_in_the_respondents_language_with_fallback():
    names = {"fi": "Turun yhteispäivystys", "sv": "Åbo samjour", "en": "Turku ED"}
    m = render("sv", {"fi": "Suomeksi", "sv": "På svenska"}, names, "https://x/opt-out")
    assert m.language == "sv" and "På svenska" in m.body and "Åbo samjour" in m.subject
    assert "https://x/opt-out" in m.body
    assert render("en", {"fi": "Vain suomeksi"}, names, "u").language == "fi"
    assert pick_language("sv", {"en": "x"}) == "en"
