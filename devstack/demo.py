"""`feedback demo`: the whole pipeline on the local stack with the bundled sample set.

Starts (or reuses) Kafka, Elasticsearch and the SMTP sink, creates topics and the
index, starts every service as its own process, sends the samples through every
channel, waits until everything valid is indexed, publishes one "you said, we
did" action, waits for the emails and prints a summary. Exit code 0 only when every
valid item was indexed exactly once, no personal data reached the index, and every
expected email arrived exactly once.
"""
from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from tqdm import tqdm

from pipelines.closure import matching_query, notification_id
from devstack.demo_samples import SAMPLES, DemoSamples, sample_lines, samples_at
from devstack.processes import ALL_SERVICES, ServiceGroup
from services.settings import SERVICE_PORTS, Settings

if TYPE_CHECKING:
    from devstack.stack import LocalStack

CSV_SURVEY_ID = "csv-export-demo"
# What must never be found in an indexed document.
PII_PATTERNS = {
    "email": re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+"),
    "hetu": re.compile(r"\b\d{6}[-+A-FU-Ya-fu-y]\d{3}[0-9A-Ya-y]\b"),
    "phone": re.compile(r"(?:\+358|\b0)\s?\(?\d{1,3}\)?[\s-]?\d{3}[\s-]?\d{2,4}"),
}


@dataclass
class DemoRun:
    settings: Settings
    samples: DemoSamples = field(default_factory=samples_at)  # the sample set moved to just before this run
    accepted: dict[str, str] = field(default_factory=dict)  # feedback_id -> channel
    rejected: list[tuple[str, int, str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def send_samples(run: DemoRun, ingest_url: str) -> None:
    """Every sample through its channel's endpoint, the CSV through the import command's path."""
    from services.ops.survey_import import import_csv

    keys = {c: k.get_secret_value() for c, k in run.settings.ingest_api_keys.items()}
    batches = [(channel, run.samples.bodies(channel)) for channel in ("app", "survey", "kiosk")]
    total = sum(len(b) for _, b in batches)
    with httpx.Client(base_url=ingest_url, timeout=30) as client, tqdm(total=total, desc="send samples") as bar:
        for channel, bodies in batches:
            for body in bodies:
                resp = client.post(f"/v1/feedback/{channel}", json=body, headers={"X-API-Key": keys[channel]})
                if resp.status_code in (200, 202):
                    run.accepted[resp.json()["feedback_id"]] = channel
                else:
                    run.failures.append(f"sample rejected ({channel}): {resp.text[:200]}")
                bar.update()
        for item in run.samples.invalid():
            resp = client.post(f"/v1/feedback/{item['channel']}", json=item["body"],
                               headers={"X-API-Key": keys[item["channel"]]})
            problem = "; ".join(f"{e['field']}: {e['problem']}" for e in resp.json().get("errors", []))
            run.rejected.append((item["channel"], resp.status_code, problem))
            if resp.status_code < 400:
                run.failures.append(f"invalid sample was accepted: {item['why']}")
    with tempfile.TemporaryDirectory() as tmp:
        export = Path(tmp) / "survey_export.csv"
        export.write_text(run.samples.csv_text(), encoding="utf-8")
        report = import_csv(export, CSV_SURVEY_ID, ingest_url, keys["survey"])
        if report.rejected:
            run.failures.append(f"{len(report.rejected)} CSV rows rejected")
        # The ids are derived from survey and response ids, so they can be computed here.
        from pipelines.intake import feedback_id_for, survey_from_csv_row
        import csv

        with export.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                body = survey_from_csv_row(row, CSV_SURVEY_ID)
                run.accepted[feedback_id_for("survey", f"{body.survey_id}:{body.response_id}")] = "survey_csv"


def inject_poison(settings: Settings) -> None:
    """One malformed event straight onto feedback.received, to show the enricher's dead-lettering."""
    from kafka import KafkaProducer

    from services.topics import FEEDBACK_RECEIVED

    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    producer.send(settings.topic(FEEDBACK_RECEIVED.name), key=b"poison",
                  value=b'{"schema_version": 1, "feedback_id": "not-a-uuid", "channel": "fax"}').get(30)
    producer.close()


def wait_indexed(es: Any, alias: str, ids: list[str], timeout: float = 600) -> int:
    deadline = time.monotonic() + timeout
    found = 0
    with tqdm(total=len(ids), desc="indexed") as bar:
        while time.monotonic() < deadline:
            es.indices.refresh(index=alias)
            found = es.count(index=alias, query={"ids": {"values": ids}})["count"]
            bar.update(found - bar.n)
            if found >= len(ids):
                return found
            time.sleep(1)
    return found


def read_topic(settings: Settings, base: str, timeout_ms: int = 3000) -> list[dict[str, Any]]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(settings.topic(base), bootstrap_servers=settings.kafka_bootstrap,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=timeout_ms, group_id=None)
    records = [json.loads(m.value) for m in consumer if m.value is not None]
    consumer.close()
    return records


def mailbox_for(maildir: Path, ids: set[str]) -> Counter[str]:
    from devstack.smtp import read_mailbox

    return Counter(m["X-Notification-Id"] for m in read_mailbox(maildir) if m["X-Notification-Id"] in ids)


def table(rows: list[list[Any]], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda r: "  ".join(str(x).ljust(w) for x, w in zip(r, widths))  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def urgent_emails(maildir: Path, ids: set[str]) -> Counter[str]:
    """Emails the urgent worker sent about ``ids``, by kind (duty, escalation)."""
    from devstack.smtp import read_mailbox

    return Counter(m["X-Urgent-Kind"] for m in read_mailbox(maildir) if m["X-Feedback-Id"] in ids)


def summary(run: DemoRun, es: Any, action_id: str, expected: set[str], delivered: Counter[str],
            deliveries: list[dict[str, Any]], dlq: list[dict[str, Any]], pii_hits: list[str],
            urgent_mail: Counter[str] | None = None) -> str:
    s = run.settings
    alias = s.index_alias
    out: list[str] = ["", "=" * 72, "FEEDBACK PIPELINE DEMO: SUMMARY", "=" * 72]
    by_channel = Counter(run.accepted.values())
    out.append("\nItems accepted per channel\n" + table(
        [[c, n] for c, n in sorted(by_channel.items())] + [["total", sum(by_channel.values())]], ["channel", "items"]))
    resp = es.search(index=alias, size=0, aggs={
        "lang": {"terms": {"field": "language"}},
        "themes": {"terms": {"field": "theme_codes", "size": 30},
                   "aggs": {"s": {"terms": {"field": "sentiment"}}}}})
    out.append("\nLanguages in the index: " + ", ".join(
        f"{b['key']} {b['doc_count']}" for b in resp["aggregations"]["lang"]["buckets"]))
    rows = []
    for b in resp["aggregations"]["themes"]["buckets"]:
        counts = {x["key"]: x["doc_count"] for x in b["s"]["buckets"]}
        rows.append([b["key"], counts.get("negative", 0), counts.get("neutral", 0), counts.get("positive", 0),
                     b["doc_count"]])
    out.append("\nTheme by sentiment\n" + table(rows, ["theme", "negative", "neutral", "positive", "total"]))
    out.append(f"\nDead letters ({len(dlq)})")
    for d in dlq:
        out.append(f"  [{d['stage']}] {d['error_type']}: {d['reason'][:110]}")
    query = "jono"
    # Finnish word forms: "jono" should find "jonossa", "jonotin", "jonottaa".
    hits = es.search(index=alias, size=3, query={"bool": {
        "must": [{"multi_match": {"query": query, "fields": ["text", "text.fi", "text.fi_light"]}}],
        "must_not": [{"term": {"is_duplicate": True}}]}},
                     _source=["unit", "language", "sentiment", "theme_codes", "text"])["hits"]
    out.append(f"\nSample search: \"{query}\" ({hits['total']['value']} hits, top 3)")
    for h in hits["hits"]:
        d = h["_source"]
        out.append(f"  {d['unit']:18} {d['language']} {d['sentiment']:8} {','.join(d['theme_codes'])[:30]:30} "
                   f"{d['text'][:70]!r}")
    urgent = es.count(index=alias, query={"term": {"urgent": True}})["count"]
    dups = es.count(index=alias, query={"term": {"is_duplicate": True}})["count"]
    redacted = es.count(index=alias, query={"range": {"redaction_total": {"gt": 0}}})["count"]
    out.append(f"\nUrgent items: {urgent}   near-duplicates flagged: {dups}   items with redactions: {redacted}")
    if urgent_mail is not None:
        out.append(f"  urgent emails to duty addresses: {urgent_mail['duty']}   escalations: {urgent_mail['escalation']}")
    statuses = Counter(d["status"] for d in deliveries if d["action_id"] == action_id)
    langs = Counter(d["language"] for d in deliveries if d["action_id"] == action_id and d["status"] == "delivered")
    out.append(f"\nAction {action_id} (turku-ed, access_waiting): {len(expected)} consenting respondents matched")
    out.append("  deliveries: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())) +
               "   languages: " + ", ".join(f"{k} {v}" for k, v in sorted(langs.items())))
    out.append(f"  emails in the SMTP mailbox: {sum(delivered.values())} "
               f"(distinct {len(delivered)}, expected {len(expected)})")
    closed = es.count(index=alias, query={"term": {"closure_action_ids": action_id}})["count"]
    out.append(f"  documents marked closed with the action: {closed}")
    out.append(f"\nPersonal data found in the index: {len(pii_hits)}")
    out.append("\nResult: " + ("OK" if not run.failures else "FAILED\n  - " + "\n  - ".join(run.failures)))
    return "\n".join(out)


def planted_personal_data() -> set[str]:
    """Every contact detail and identifier the sample set contains, as exact strings."""
    found: set[str] = set()
    texts: list[str] = []
    for name in ("app.jsonl", "survey.jsonl", "kiosk.jsonl"):
        for body in sample_lines(name):
            texts.append(body.get("text") or body.get("answer_text") or body.get("comment") or "")
            for contact in (body.get("contact"), body.get("respondent")):
                found.update(v for k, v in (contact or {}).items() if k in ("email", "phone", "push_token") and v)
    import csv

    with (SAMPLES / "survey_export.csv").open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            texts.append(row["answer"])
            found.update(v for v in (row["email"], row["phone"]) if v)
    for text in texts:
        for pattern in PII_PATTERNS.values():
            found.update(m.group(0).strip() for m in pattern.finditer(text) if len(m.group(0).strip()) >= 8)
    return found


def scan_pii(es: Any, alias: str) -> list[str]:
    """Documents that contain any planted personal data string, anywhere in them."""
    planted = planted_personal_data()
    hits = []
    resp = es.search(index=alias, size=10000, query={"match_all": {}}, _source={"excludes": ["embedding"]})
    for h in resp["hits"]["hits"]:
        blob = json.dumps(h["_source"], ensure_ascii=False)
        hits.extend(f"{h['_id']}: {s[:3]}…" for s in planted if s in blob)
    return hits


def preflight(stack: "LocalStack") -> bool:
    """`feedback doctor`'s checks for this stack's ports, before anything long starts."""
    from services.ops.doctor import gather, report

    text, code = report(gather(Settings(**settings_overrides(stack.env())), with_ports=True))
    if code:
        print(text, file=sys.stderr)
    return code == 0


def settings_overrides(env: dict[str, str]) -> dict[str, str]:
    """FEEDBACK_* variables as Settings keyword arguments."""
    return {k.removeprefix("FEEDBACK_").lower(): v for k, v in env.items()}


def run_demo(keep_running: bool = False) -> int:
    """Run the demo; returns the process exit code."""
    from services.adapters.es import es_client, setup_index
    from devstack import LocalStack
    from services.adapters.topic_admin import create_topics

    run_id = uuid.uuid4().hex[:6]
    stack = LocalStack()
    if not preflight(stack):
        return 1
    stack.start()
    env = {**stack.env(), "FEEDBACK_TOPIC_PREFIX": f"demo-{run_id}.", "FEEDBACK_INDEX_ALIAS": f"feedback-demo-{run_id}",
           "FEEDBACK_STATE_DIR": str(Path(tempfile.gettempdir()) / f"feedback-demo-{run_id}"),
           "FEEDBACK_LOG_LEVEL": os.environ.get("FEEDBACK_LOG_LEVEL", "INFO"),
           "FEEDBACK_DEV_MODE": "true"}  # the demo runs on the built-in development keys
    os.environ.update(env)
    settings = Settings()
    run = DemoRun(settings)
    group = ServiceGroup(env, Path(tempfile.gettempdir()) / f"feedback-demo-{run_id}" / "logs")
    es = es_client(settings)
    try:
        print(f"Local stack: Kafka {settings.kafka_bootstrap}, Elasticsearch {settings.es_url}, "
              f"SMTP {settings.smtp_host}:{settings.smtp_port}; run {run_id}")
        create_topics(settings)
        from pipelines.embedding import make_embedder

        setup_index(es, settings.index_alias, make_embedder(settings.embedder).dim)
        print("Starting services: " + ", ".join(ALL_SERVICES))
        group.start_all(ALL_SERVICES)
        ingest_url = f"http://127.0.0.1:{SERVICE_PORTS['ingest']}"
        send_samples(run, ingest_url)
        inject_poison(settings)
        ids = sorted(run.accepted)
        found = wait_indexed(es, settings.index_alias, ids)
        if found != len(ids):
            run.failures.append(f"only {found} of {len(ids)} valid items indexed")
        total = es.count(index=settings.index_alias)["count"]
        if total != len(ids):
            run.failures.append(f"index holds {total} documents for {len(ids)} valid items")
        api = httpx.Client(base_url=f"http://127.0.0.1:{SERVICE_PORTS['api']}", timeout=30,
                           headers={"Authorization": "Bearer " + next(iter(settings.api_tokens.values()))
                                    .get_secret_value()})
        demo_action = run.samples.action()
        print(f"Action period (the samples moved to this run): {demo_action['period']['from']} .. "
              f"{demo_action['period']['to']}")
        resp = api.post("/v1/actions", json=demo_action)
        resp.raise_for_status()
        action_id = resp.json()["action_id"]
        action = {**demo_action, "action_id": action_id}
        refs = {h["_source"]["respondent_ref"] for h in es.search(
            index=settings.index_alias, size=1000, _source=["respondent_ref"],
            query={"bool": {"filter": [matching_query(action), {"term": {"follow_up_consent": True}}]}})["hits"]["hits"]}
        expected = {notification_id(action_id, r) for r in refs}
        delivered: Counter[str] = Counter()
        deadline = time.monotonic() + 180
        with tqdm(total=len(expected), desc="emails") as bar:
            while time.monotonic() < deadline:
                delivered = mailbox_for(stack.maildir, expected)
                bar.update(len(delivered) - bar.n)
                if len(delivered) >= len(expected):
                    time.sleep(2)  # let any duplicate show up before counting
                    delivered = mailbox_for(stack.maildir, expected)
                    break
                time.sleep(1)
        missing = expected - set(delivered)
        if missing:
            run.failures.append(f"{len(missing)} expected emails did not arrive")
        if any(n > 1 for n in delivered.values()):
            run.failures.append("some respondents got more than one email")
        if not expected:
            run.failures.append("the demo action matched no consenting respondent")
        pii = scan_pii(es, settings.index_alias)
        if pii:
            run.failures.append(f"personal data in the index: {pii[:5]}")
        dlq = read_topic(settings, "feedback.dlq")
        if not any(d["stage"] == "enricher" for d in dlq):
            run.failures.append("the poison event did not reach the dead-letter topic")
        deliveries = read_topic(settings, "closure.deliveries")
        print(summary(run, es, action_id, expected, delivered, deliveries, dlq, pii,
                      urgent_emails(stack.maildir, set(run.accepted))))
    except Exception as exc:  # noqa: BLE001 - report, then clean up
        run.failures.append(f"{type(exc).__name__}: {exc}")
        print(f"demo failed: {type(exc).__name__}: {exc}")
    finally:
        codes = group.stop_all()
        bad = {k: v for k, v in codes.items() if v not in (0, -15)}
        if bad:
            print(f"services did not stop cleanly: {bad} (logs in {group.log_dir})")
        if not keep_running:
            stack.stop()
    return 0 if not run.failures else 1
