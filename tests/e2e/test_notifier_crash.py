"""The notifier killed with SIGKILL in the middle of a batch, then restarted: no
notification is lost and none reaches a respondent twice.

Real Kafka, the real SMTP sink and a real HTTP server as SMS gateway and push
service (tests/e2e/gateway.py: honours Idempotency-Key like a real provider, fails
every 4th request with 503 to exercise retries). 24 respondents give feedback with
contact details through the real ingest (email, SMS, push; Finnish, Swedish,
English); 24 notifications go straight onto closure.notifications. The notifier is
killed while it is blocked in the HTTP call of the 5th accepted SMS/push message, the
worst moment: the gateway has the message, the notifier does not know.

What must hold (docs/closure-loop.md): every message delivered exactly once per
respondent; messages finished before the crash are not sent again (the SMTP sink
does not deduplicate, so a resent email would show); the one in flight is sent again
with the same Idempotency-Key (the gateway drops the repeat); every notification
ends with a "delivered" receipt. Then the weekly frequency cap.
"""
from __future__ import annotations

import json
import signal
import threading
import time
import uuid
from collections import Counter

import httpx
import pytest

from closure_helpers import MESSAGES, emails, notify, register, wait_for
from gateway import Delivery, Gateway
from devstack.demo import read_topic
from devstack.smtp import read_mailbox
from services.topics import CLOSURE_NOTIFICATIONS

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

CHANNELS = ("email", "sms", "push")
LANGS = ("fi", "sv", "en")
N = 24
KILL_AT = 5  # the 5th SMS/push message the gateway accepts is in flight when the notifier dies


class Crash:
    """Kills the notifier from inside the gateway's handler of the KILL_AT-th message."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.killed = threading.Event()
        self.in_flight: Delivery | None = None

    def on_accept(self, delivery: Delivery, accepted: int) -> None:
        if accepted == KILL_AT and not self.killed.is_set():
            self.in_flight = delivery
            self.reached.set()
            self.killed.wait(60)  # hold the request: the notifier is blocked in it when it dies


@pytest.fixture(scope="module")
def crash() -> Crash:
    return Crash()


@pytest.fixture(scope="module")
def gateway(crash: Crash):
    gw = Gateway(fail_every=4, on_accept=crash.on_accept).start()
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def loop(pipeline_env, service_group, gateway: Gateway):
    env, settings = pipeline_env
    env.update({"FEEDBACK_SMS_GATEWAY_URL": f"{gateway.url}/sms", "FEEDBACK_PUSH_WEBHOOK_URL": f"{gateway.url}/push",
                "FEEDBACK_NOTIFY_RETRY_INITIAL_S": "0.2", "FEEDBACK_NOTIFY_MAX_PER_WEEK": "2"})
    service_group.start_all(("ingest", "notifier"))
    people = register(service_group.running["ingest"].url, settings, [CHANNELS[i % 3] for i in range(N)],
                      [LANGS[(i // 3) % 3] for i in range(N)], "crash")
    return env, settings, people


def missing_report(settings, stack, gateway, by_nid: dict[str, dict], notifier) -> str:
    """What a failed wait needs to be diagnosed from CI output alone: the notifications
    not delivered, where they sit on the topic, their receipts, the notifier's warnings."""
    from kafka import KafkaConsumer

    got = set(emails(stack.maildir, set(by_nid))) | set(gateway.delivered)
    missing = set(by_nid) - got
    consumer = KafkaConsumer(settings.topic(CLOSURE_NOTIFICATIONS.name), bootstrap_servers=settings.kafka_bootstrap,
                             auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=3000)
    where = {json.loads(r.value)["notification_id"]: (r.partition, r.offset) for r in consumer}
    consumer.close()
    receipts = [(r["notification_id"], r["status"], r.get("reason")) for r in read_topic(settings, "closure.deliveries")
                if r["notification_id"] in missing]
    log_lines = [line for line in notifier.log_path.read_text(errors="replace").splitlines()
                 if any(w in line for w in ("warning", "error", "critical", "skipped", "recovered", "Traceback",
                                            "stale_message"))]
    return (f"missing {len(missing)} of {len(by_nid)}: {sorted(where.get(n, ('?', '?')) for n in missing)}\n"
            f"their receipts: {receipts}\nnotifier log (warnings, last 40):\n" + "\n".join(log_lines[-40:]))


def test_sigkill_mid_batch_loses_nothing_and_duplicates_nothing(loop, stack, gateway, crash, service_group):
    env, settings, people = loop
    action_id = str(uuid.uuid4())
    by_nid = notify(settings, people, action_id)
    email_nids = {n for n, p in by_nid.items() if p["channel"] == "email"}
    http_nids = set(by_nid) - email_nids

    assert crash.reached.wait(180), "the gateway never saw the message to crash on"
    before_emails = emails(stack.maildir, email_nids)
    code = service_group.stop("notifier", sig=signal.SIGKILL)
    crash.killed.set()
    assert code == -signal.SIGKILL
    assert crash.in_flight is not None and crash.in_flight.key in http_nids
    assert len(before_emails) < len(email_nids), "the crash came too late to be mid-batch"

    notifier = service_group.start("notifier")
    try:
        wait_for(lambda: set(emails(stack.maildir, email_nids)) == email_nids
                 and set(gateway.delivered) >= http_nids, 300, "every message after the restart")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{missing_report(settings, stack, gateway, by_nid, notifier)}") from None
    time.sleep(5)  # give a duplicate the chance to show up

    got = emails(stack.maildir, email_nids)
    assert got == Counter({n: 1 for n in email_nids}), "each email exactly once (the sink does not deduplicate)"
    assert all(n == 1 for n in before_emails.values())
    assert set(gateway.delivered) & set(by_nid) == http_nids
    # Only the message in flight at the crash was sent again, once, with the same Idempotency-Key.
    assert {k: v for k, v in gateway.replays.items() if k in by_nid} == {crash.in_flight.key: 1}
    assert gateway.failed > 0, "the gateway's 503s were retried"

    for m in read_mailbox(stack.maildir):
        nid = m["X-Notification-Id"]
        if nid in email_nids:
            p = by_nid[nid]
            assert m["To"] == p["detail"] and m["Content-Language"] == p["lang"]
            assert m["Message-ID"] == f"<{nid}@hyvinvointialue.example>"
            assert MESSAGES[p["lang"]] in m.get_content()
    for nid in http_nids:
        d, p = gateway.delivered[nid], by_nid[nid]
        assert d.path == ("/sms" if p["channel"] == "sms" else "/push")
        assert d.payload["language"] == p["lang"] and d.payload["id"] == nid
        assert d.payload["to" if p["channel"] == "sms" else "token"] == p["detail"]

    receipts = [r for r in read_topic(settings, "closure.deliveries") if r["action_id"] == action_id]
    statuses: dict[str, set[str]] = {}
    for r in receipts:
        statuses.setdefault(r["notification_id"], set()).add(r["status"])
    assert statuses == {n: {"delivered"} for n in by_nid}
    assert any(r["attempts"] > 1 for r in receipts), "some delivery needed a retry"

    text = httpx.get(f"{notifier.url}/metrics", timeout=10).text
    resumed = [line for line in text.splitlines() if line.startswith("feedback_notifications_resumed_total{")]
    assert resumed and sum(float(line.rsplit(" ", 1)[1]) for line in resumed) == 1.0


def test_weekly_frequency_cap(loop, stack, service_group):
    env, settings, people = loop
    person = next(p for p in people if p["channel"] == "email")  # already got one message this week
    second, third = str(uuid.uuid4()), str(uuid.uuid4())
    n2 = next(iter(notify(settings, [person], second)))
    n3 = next(iter(notify(settings, [person], third)))
    wait_for(lambda: {r["notification_id"] for r in read_topic(settings, "closure.deliveries")} >= {n2, n3},
             120, "receipts of both notifications")
    by_id = {r["notification_id"]: r for r in read_topic(settings, "closure.deliveries") if r["notification_id"]
             in (n2, n3)}
    assert by_id[n2]["status"] == "delivered"
    assert by_id[n3]["status"] == "skipped_frequency_cap" and "2 messages in 7 days" in by_id[n3]["reason"]
    assert emails(stack.maildir, {n2, n3}) == Counter({n2: 1})
    assert json.dumps(by_id).count("@") == 0, "receipts carry no contact details"
