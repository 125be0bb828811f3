"""Pure pieces of the closure loop, consent and erasure: notification log and frequency
cap, closure stats, console sessions, the public board, contact records, erasure."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from pipelines import console_session as sessions
from pipelines import notification_log as nlog
from pipelines.board import board_entries, json_feed
from pipelines.closure_stats import closure_stats, closure_stats_query
from pipelines.contacts import clobbered, latest_by_key, needs_rotation, withdraw_consent
from pipelines.erasure import confirmation, contact_matches, direct_ref
from pipelines.pseudonym import respondent_ref
from pipelines.vault import Contact
from schemas import EVENT_VERSIONS, event_schema
from schemas.validate import event_errors

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
KEY = b"unit-test-pseudonym-key"


# --- notification log and frequency cap ---------------------------------------------


def test_log_round_trip_and_prune():
    log = nlog.with_entry({}, "n1", nlog.Entry("delivered", NOW - timedelta(days=300), True, "email", "fi", 1), NOW)
    log = nlog.with_entry(log, "n2", nlog.Entry(nlog.SENDING, NOW, False, "sms", "sv"), NOW)
    assert set(log) == {"n1", "n2"}
    later = NOW + timedelta(days=200)
    log = nlog.with_entry(log, "n3", nlog.Entry("failed", later, False, "push", "en", 5), later)
    assert set(log) == {"n2", "n3"}, "entries older than KEEP are dropped on the next write"
    back = nlog.load(nlog.dump(log))
    assert back == log
    assert nlog.load(None) == {}


def test_frequency_cap_counts_sent_and_sending_within_a_week():
    log: nlog.RespondentLog = {}
    for i, (status, days) in enumerate([("delivered", 1), (nlog.SENDING, 2), ("delivered", 8), ("failed", 1),
                                        ("skipped_no_consent", 1)]):
        log[f"n{i}"] = nlog.Entry(status, NOW - timedelta(days=days))
    assert nlog.sent_in_window(log, NOW) == 2
    assert nlog.over_cap(log, "new", NOW, 2)
    assert not nlog.over_cap(log, "new", NOW, 3)
    assert not nlog.over_cap(log, "new", NOW, 0), "0 means no cap"
    assert not nlog.over_cap(log, "n1", NOW, 2), "a resumed notification does not count against itself"


# --- closure stats ----------------------------------------------------------------------


def test_closure_stats_from_aggregation():
    body = closure_stats_query(90)
    assert body["size"] == 0 and body["query"]["range"]["received_at"]["gte"] == "now-90d"
    resp = {"aggregations": {"units": {"buckets": [
        {"key": "turku-ed", "doc_count": 10, "closed": {"doc_count": 4, "hours": {"values": {"50.0": 36.5}}}},
        {"key": "salo-ed", "doc_count": 3, "closed": {"doc_count": 0, "hours": {"values": {"50.0": None}}}},
    ]}}}
    stats = closure_stats(resp)
    assert stats["turku-ed"].rate == pytest.approx(0.4) and stats["turku-ed"].median_hours == 36.5
    assert stats["salo-ed"].rate == 0 and stats["salo-ed"].median_hours is None
    assert closure_stats({}) == {}


# --- console sessions -----------------------------------------------------------------------


def test_session_round_trip_tamper_and_expiry():
    key = sessions.session_key(KEY)
    s = sessions.new_session(key, "lead", "tok", 3600, now=1000)
    value = sessions.encode(key, s)
    assert "tok" not in value
    assert sessions.decode(key, value, now=2000) == s
    assert sessions.decode(key, value, now=1000 + 3601) is None, "expired"
    payload, sig = value.rsplit(".", 1)
    forged = sessions.encode(key, sessions.Session("admin", s.expires, s.csrf, s.token_fp)).rsplit(".", 1)[0]
    assert sessions.decode(key, f"{forged}.{sig}", now=2000) is None, "signature must cover the payload"
    assert sessions.decode(sessions.session_key(b"other"), value, now=2000) is None
    assert sessions.decode(key, "garbage", now=2000) is None and sessions.decode(key, None) is None
    assert s.token_fp == sessions.token_fingerprint(key, "tok") != sessions.token_fingerprint(key, "tok2")


# --- public board ---------------------------------------------------------------------------------


ACTION = {"action_id": "a1", "unit": "turku-ed", "themes": ["access_waiting"], "published_by": "lead.person",
          "period": {"from": "2026-10-01T00:00:00Z", "to": "2026-10-31T23:59:59Z"},
          "messages": {"fi": "Lisäsimme hoitajia.", "en": "We added nurses."}, "title": {"fi": "Odotus"},
          "published_at": "2026-11-01T10:00:00Z"}


def test_board_language_fallback_counts_and_no_publisher():
    older = {**ACTION, "action_id": "a0", "published_at": "2026-10-01T10:00:00Z"}
    entries = board_entries([older, ACTION], {"a1": 7}, "sv")
    assert [e.action_id for e in entries] == ["a1", "a0"], "newest first"
    e = entries[0]
    assert e.language == "fi" and e.message == "Lisäsimme hoitajia." and e.title == "Odotus"
    assert e.feedback_count == 7 and entries[1].feedback_count == 0
    assert e.themes[0][0] == "access_waiting" and e.themes[0][1] != "access_waiting", "label in Swedish"
    en = board_entries([ACTION], {}, "en")[0]
    assert en.language == "en" and en.message == "We added nurses."
    feed = json_feed(entries, unit="turku-ed", unit_name="Åbo samjour", lang="sv", home_url="h", feed_url="f")
    assert feed["version"] == "https://jsonfeed.org/version/1.1" and len(feed["items"]) == 2
    assert "lead.person" not in json.dumps(feed) and "lead.person" not in json.dumps([x.as_dict() for x in entries])


# --- contact records -------------------------------------------------------------------------------


def _contact_record(**over):
    rec = {"schema_version": 1, "respondent_ref": "r_" + "a" * 24, "contact_ciphertext": "x", "key_id": "k1",
           "preferred_channel": "email", "language": "sv",
           "consent": {"follow_up": True, "given_at": "2026-11-01T00:00:00Z", "channel": "app"},
           "updated_at": "2026-11-01T00:00:00Z"}
    rec.update(over)
    return rec


def test_withdraw_consent_is_a_valid_record():
    out = withdraw_consent(_contact_record(), "2026-11-28T12:00:00Z")
    assert out["consent"]["follow_up"] is False and out["consent"]["withdrawn_at"] == "2026-11-28T12:00:00Z"
    assert out["consent"]["given_at"] == "2026-11-01T00:00:00Z" and out["updated_at"] == "2026-11-28T12:00:00Z"
    assert event_errors("respondent.contacts", out) == []


def test_latest_by_key_and_rotation_need():
    latest = latest_by_key([(b"a", b"1"), (b"b", b"2"), (b"a", None)])
    assert latest == {b"a": None, b"b": b"2"}
    assert needs_rotation(json.dumps(_contact_record(key_id="old")).encode(), "new")
    assert not needs_rotation(json.dumps(_contact_record(key_id="new")).encode(), "new")
    assert not needs_rotation(None, "new")


def test_clobbered_finds_newer_writes_the_rotation_overwrote():
    written = {b"a": b"A-rot", b"b": b"B-rot", b"c": b"C-rot", b"d": b"D-rot"}
    after = [
        (b"a", b"A-new"), (b"a", b"A-rot"),  # a newer write, then our stale copy on top: clobbered
        (b"b", b"B-rot"), (b"b", b"B-new"),  # ours first, the newer write on top: fine
        (b"c", b"C-rot"),                     # nobody else wrote: fine
        (b"d", None), (b"d", b"D-rot"),      # an erasure's tombstone overwritten: must come back
        (b"x", b"X"),                         # a key the rotation did not touch
    ]
    assert clobbered(written, after) == {b"a": b"A-new", b"d": None}


# --- erasure -----------------------------------------------------------------------------------------


def test_direct_ref_and_contact_matching():
    assert direct_ref(KEY, email=" Anna@Example.FI ") == (respondent_ref(KEY, email="anna@example.fi"), "email")
    assert direct_ref(KEY, phone="040 123 4567") == (respondent_ref(KEY, phone="+358401234567"), "phone")
    ref = "r_" + "0" * 24
    assert direct_ref(KEY, ref=ref) == (ref, "ref")
    for bad in ({}, {"email": "a@b.fi", "phone": "0401234567"}, {"ref": "nope"}):
        with pytest.raises(ValueError):
            direct_ref(KEY, **bad)
    both = Contact(email="anna@example.fi", phone="+358 40 123 4567")
    assert contact_matches(both, phone="0401234567") and contact_matches(both, email="ANNA@example.fi")
    assert not contact_matches(both, phone="0409999999") and not contact_matches(Contact(push_token="t"), email="x@y.fi")


def test_erasure_confirmation_matches_its_schema_and_topic():
    from services.topics import ALL_TOPICS, GDPR_ERASURE

    event = confirmation("r_" + "b" * 24, "email", "dpo", "2026-11-28T12:00:00Z", "2026-11-28T12:00:01Z",
                         contact_tombstoned=True, documents_deleted=2, kafka_tombstones=6)
    assert event_errors("gdpr.erasure", event) == []
    assert EVENT_VERSIONS["gdpr.erasure"] == 1 and event_schema("gdpr.erasure")["title"] == "gdpr.erasure v1"
    assert GDPR_ERASURE in ALL_TOPICS and GDPR_ERASURE.key == "respondent_ref"
    assert "@" not in json.dumps(event)


def test_feedback_topics_can_be_erased_by_tombstone():
    from services.topics import FEEDBACK_ENRICHED, FEEDBACK_RECEIVED, FEEDBACK_URGENT, RESPONDENT_CONTACTS

    for spec in (FEEDBACK_RECEIVED, FEEDBACK_ENRICHED, FEEDBACK_URGENT):
        assert spec.config["cleanup.policy"] == "compact,delete", spec.name
        assert spec.key == "feedback_id" and "retention.ms" in spec.config and "max.compaction.lag.ms" in spec.config
    assert RESPONDENT_CONTACTS.config["cleanup.policy"] == "compact"


def test_indexer_drops_only_feedback_given_before_the_erasure():
    from services.workers.indexer import erased_before

    erased = {"r_" + "c" * 24: "2026-11-28T12:00:00Z"}
    doc = {"respondent_ref": "r_" + "c" * 24, "received_at": "2026-11-28T11:59:59Z"}
    assert erased_before(doc, erased)
    assert not erased_before({**doc, "received_at": "2026-11-28T12:00:01Z"}, erased), "new data after the erasure"
    assert not erased_before({**doc, "respondent_ref": None}, erased)
    assert not erased_before({**doc, "respondent_ref": "r_" + "d" * 24}, erased)
