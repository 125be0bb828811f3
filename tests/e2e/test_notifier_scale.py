"""The notifier scaled out and in while it works: a second replica joins mid-backlog
(a rebalance splits the partitions), then the first is stopped with SIGTERM (its
partitions move to the second). Every message still goes out exactly once.

Real Kafka, the real ingest, two real notifier processes in one consumer group and a
real HTTP server as SMS gateway and push service (tests/e2e/gateway.py) that takes
0.25 s per message (90 of them), so the rebalances land in the middle of the backlog. What must
hold (docs/closure-loop.md): a replica finishes the message in hand before it gives
up a partition, so no message is resent (the gateway counts repeated
Idempotency-Keys), none is lost, and each gets exactly one "delivered" receipt.
"""
from __future__ import annotations

import uuid
from collections import Counter

import pytest

from closure_helpers import notify, register, wait_for
from gateway import Gateway
from devstack.demo import read_topic

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

N = 90


@pytest.fixture(scope="module")
def gateway():
    gw = Gateway(delay_s=0.25).start()
    yield gw
    gw.stop()


def test_replicas_joining_and_leaving_mid_backlog_send_each_message_once(pipeline_env, service_group, gateway):
    env, settings = pipeline_env
    env.update({"FEEDBACK_SMS_GATEWAY_URL": f"{gateway.url}/sms", "FEEDBACK_PUSH_WEBHOOK_URL": f"{gateway.url}/push",
                "FEEDBACK_NOTIFY_MAX_PER_WEEK": "0"})
    service_group.start_all(("ingest", "notifier"))
    people = register(service_group.running["ingest"].url, settings, ["sms" if i % 2 else "push" for i in range(N)],
                      ["fi"] * N, "scale")
    action_id = str(uuid.uuid4())
    by_nid = notify(settings, people, action_id)

    wait_for(lambda: len(gateway.delivered) >= 8, 120, "the first replica to be under way")
    second = service_group.start("notifier", instance=1)
    wait_for(lambda: "partitions_assigned" in second.log_path.read_text(errors="replace")
             and '"partitions": []' not in last_assignment(second.log_path), 120, "the second replica's partitions")
    at_join = len(gateway.delivered)
    wait_for(lambda: len(gateway.delivered) >= at_join + 8, 120, "both replicas to work")
    assert service_group.stop("notifier") == 0, "SIGTERM: a clean exit"
    at_leave = len(gateway.delivered)
    wait_for(lambda: set(gateway.delivered) >= set(by_nid), 300, "every message")

    assert at_leave < N, "the first replica left before the backlog was done"
    assert set(gateway.delivered) & set(by_nid) == set(by_nid)
    assert not {k: v for k, v in gateway.replays.items() if k in by_nid}, "no message was sent again"
    wait_for(lambda: len({r["notification_id"] for r in read_topic(settings, "closure.deliveries")
                          if r["action_id"] == action_id}) == N, 60, "every receipt")
    receipts = Counter((r["notification_id"], r["status"]) for r in read_topic(settings, "closure.deliveries")
                       if r["action_id"] == action_id)
    assert receipts == Counter({(nid, "delivered"): 1 for nid in by_nid})
    for nid, person in by_nid.items():
        payload = gateway.delivered[nid].payload
        assert payload["to" if person["channel"] == "sms" else "token"] == person["detail"]


def last_assignment(log_path) -> str:
    lines = [line for line in log_path.read_text(errors="replace").splitlines() if "partitions_assigned" in line]
    return lines[-1] if lines else '"partitions": []'
