"""Faults the pipeline must survive, with real processes and real servers.

This module runs its own Kafka, Elasticsearch and SMTP sink (ports beside the session
stack's), because it stops and restarts them: Elasticsearch for three minutes, the
Kafka broker for one, SMTP and the SMS gateway for longer than the notifier's retries.
Every worker is a real process on the project's runtime. What must hold:

- no worker exits; readiness goes false while a dependency is down and back after;
- ingest answers 503 with Retry-After while Kafka is down, and counts it; so does the API for a
  lead's action, which goes through when sent again after Kafka is back;
- every accepted item is indexed exactly once, nothing is dead-lettered for an outage;
- every notification is delivered exactly once after the outage, none is given up,
  and a replay resends nothing that was delivered;
- a poison record on each worker's input is dead-lettered alone and the worker goes on;
- SIGKILL of the indexer and of the closure worker in the middle of their work loses
  nothing (the enricher and notifier have their own crash tests).
"""
from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections import Counter

import httpx
import pytest
from kafka import KafkaProducer

from closure_helpers import emails, notify, register, wait_for
from gateway import Gateway
from devstack.demo import read_topic
from services.adapters.es import es_client, setup_index
from devstack import LocalStack
from devstack.processes import ServiceGroup
from services.settings import Settings
from services.adapters.topic_admin import create_topics
from services.topics import CLOSURE_ACTIONS, CLOSURE_NOTIFICATIONS, FEEDBACK_ENRICHED, FEEDBACK_RECEIVED

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ES_OUTAGE_S = 180
KAFKA_OUTAGE_S = 60
DELIVERY_OUTAGE_S = 45  # the notifier's quick retries take about 3 s here
WORKERS = ("enricher", "indexer", "closure", "notifier")
SERVICES = ("ingest", "api", *WORKERS)
# Beside the session stack's ports (tests/conftest.py), so both can run at once.
PORTS = {"kafka_port": int(os.environ.get("FEEDBACK_TEST_KAFKA_PORT", "29092")) + 10,
         "es_port": int(os.environ.get("FEEDBACK_TEST_ES_PORT", "29200")) + 10,
         "smtp_port": int(os.environ.get("FEEDBACK_TEST_SMTP_PORT", "20025")) + 10}
SERVICE_PORT_OFFSET = int(os.environ.get("FEEDBACK_TEST_SERVICE_PORT_OFFSET", "1000"))


@pytest.fixture(scope="module")
def fault_stack(tmp_path_factory: pytest.TempPathFactory):
    stack = LocalStack(**PORTS, stack_dir=tmp_path_factory.mktemp("fault-stack"), reuse=False)
    stack.start(timeout=300)
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def gateway():
    gw = Gateway().start()
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def world(fault_stack, gateway, tmp_path_factory: pytest.TempPathFactory):
    from pipelines.embedding import make_embedder

    run = f"faults-{uuid.uuid4().hex[:6]}"
    tmp = tmp_path_factory.mktemp("faults")
    env = {**fault_stack.env(), "FEEDBACK_TOPIC_PREFIX": f"{run}.", "FEEDBACK_INDEX_ALIAS": f"{run}-feedback",
           "FEEDBACK_STATE_DIR": str(tmp / "state"), "FEEDBACK_LOG_LEVEL": "INFO",
           "FEEDBACK_PUBLIC_BASE_URL": f"http://127.0.0.1:{8081 + SERVICE_PORT_OFFSET}",
           "FEEDBACK_SMS_GATEWAY_URL": f"{gateway.url}/sms", "FEEDBACK_PUSH_WEBHOOK_URL": f"{gateway.url}/push",
           "FEEDBACK_NOTIFY_RETRY_INITIAL_S": "0.2", "FEEDBACK_NOTIFY_MAX_PER_WEEK": "0"}
    settings = Settings(**{k.removeprefix("FEEDBACK_").lower(): v for k, v in env.items()
                           if k.startswith("FEEDBACK_")})
    create_topics(settings)
    setup_index(es_client(settings), settings.index_alias, make_embedder(settings.embedder).dim)
    group = ServiceGroup(env, tmp / "logs", port_offset=SERVICE_PORT_OFFSET)
    group.start_all(SERVICES)
    yield {"env": env, "settings": settings, "group": group, "sent": {}}
    group.stop_all()


# --- helpers -----------------------------------------------------------------------------


def _ingest(world) -> httpx.Client:
    s = world["settings"]
    return httpx.Client(base_url=world["group"].running["ingest"].url, timeout=60,
                        headers={"X-API-Key": s.ingest_api_keys["app"].get_secret_value()})


def _body(key: str, i: int) -> dict:
    return {"unit": "turku-ed", "text": f"Jonotin päivystyksessä {i % 7 + 2} tuntia, eikä kukaan kertonut miksi.",
            "follow_up_consent": False, "idempotency_key": key}


def try_send(world, client: httpx.Client, key: str, i: int, unavailable: list[httpx.Response]) -> bool:
    """One attempt: True when ingest accepted the item (202, or 200 for a repeat)."""
    resp = client.post("/v1/feedback/app", json=_body(key, i))
    if resp.status_code == 503:
        unavailable.append(resp)
        return False
    assert resp.status_code in (200, 202), resp.text
    world["sent"][key] = resp.json()["feedback_id"]
    return True


def send_all(world, tag: str, n: int) -> list[str]:
    keys = [f"{tag}-{i}" for i in range(n)]
    with _ingest(world) as client:
        for i, key in enumerate(keys):
            assert try_send(world, client, key, i, [])
    return keys


def indexed(world, ids: list[str]) -> int:
    es = es_client(world["settings"])
    es.indices.refresh(index=world["settings"].index_alias)
    return es.count(index=world["settings"].index_alias, query={"ids": {"values": ids}})["count"]


def assert_everything_indexed_once(world) -> None:
    """Every accepted item is in the index, and nothing else is: one document per item."""
    ids = sorted(set(world["sent"].values()))
    wait_for(lambda: indexed(world, ids) == len(ids), 300, f"all {len(ids)} accepted items indexed")
    es = es_client(world["settings"])
    hits = es.search(index=world["settings"].index_alias, size=10_000, _source=False,
                     query={"match_all": {}})["hits"]["hits"]
    assert sorted(h["_id"] for h in hits) == ids


def assert_workers_alive(world) -> None:
    for name in SERVICES:
        proc = world["group"].running[name].proc
        assert proc.poll() is None, f"{name} exited with {proc.returncode}"


def publish_action(world) -> httpx.Response:
    """A lead publishes a "you said, we did" action through the API (consent matches nobody here)."""
    token = next(iter(world["settings"].api_tokens.values())).get_secret_value()
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return httpx.post(f"{world['group'].running['api'].url}/v1/actions", timeout=60,
                      headers={"Authorization": f"Bearer {token}"},
                      json={"unit": "turku-ed", "themes": ["access_waiting"],
                            "period": {"from": "2020-01-01T00:00:00Z", "to": now},
                            "messages": {"fi": "Lisäsimme hoitajia.", "sv": "Fler skötare.", "en": "More nurses."}})


def ready(world, name: str) -> int:
    try:
        return httpx.get(f"{world['group'].running[name].url}/ready", timeout=5).status_code
    except httpx.HTTPError:
        return 0


def dead_letters(world, stages: set[str]) -> list[dict]:
    return [d for d in read_topic(world["settings"], "feedback.dlq") if d["stage"] in stages]


# --- the faults --------------------------------------------------------------------------


def test_elasticsearch_down_for_three_minutes(world, fault_stack):
    send_all(world, "es-before", 15)
    assert_workers_alive(world)
    fault_stack.elasticsearch.stop()
    stopped = time.monotonic()
    not_ready: set[str] = set()
    during = [f"es-during-{i}" for i in range(30)]
    with _ingest(world) as client:
        while time.monotonic() - stopped < ES_OUTAGE_S:
            if during:  # feedback keeps coming in while Elasticsearch is away
                key = during.pop(0)
                assert try_send(world, client, key, len(during), []), "ingest does not need Elasticsearch"
            not_ready |= {name for name in ("indexer", "closure") if ready(world, name) == 503}
            assert_workers_alive(world)
            time.sleep(2)
    assert not during
    assert not_ready == {"indexer", "closure"}, "readiness must say Elasticsearch is down"
    fault_stack.elasticsearch.start(fresh=False, timeout=180)
    assert_everything_indexed_once(world)
    wait_for(lambda: all(ready(world, n) == 200 for n in ("indexer", "closure")), 60, "readiness back")
    assert_workers_alive(world)
    assert dead_letters(world, {"enricher", "indexer"}) == []


def test_kafka_down_for_a_minute(world, fault_stack):
    send_all(world, "kafka-before", 10)
    fault_stack.kafka.stop()
    stopped = time.monotonic()
    pending = [f"kafka-during-{i}" for i in range(20)]
    unavailable: list[httpx.Response] = []
    action_answers: list[httpx.Response] = []
    restarted = False
    with _ingest(world) as client:
        deadline = time.monotonic() + KAFKA_OUTAGE_S + 240
        while time.monotonic() < deadline:
            if not restarted and time.monotonic() - stopped >= KAFKA_OUTAGE_S:
                assert_workers_alive(world)
                fault_stack.kafka.start(fresh=False, timeout=120)
                restarted = True
            action_done = bool(action_answers) and action_answers[-1].status_code != 503
            if not pending and action_done:
                break
            if not action_answers or (restarted and not action_done):
                # A lead's action while Kafka is away: 503 with Retry-After, not a 500; the same
                # request, sent again after Kafka is back, goes through.
                action_answers.append(publish_action(world))
            # A client as the 503 asks: the same request again later, with the same key.
            if pending and try_send(world, client, pending[0], len(pending), unavailable):
                pending.pop(0)
            else:
                time.sleep(1)
    assert restarted and not pending, f"{len(pending)} items never accepted after Kafka came back"
    codes = [r.status_code for r in action_answers]
    assert codes[0] == 503 and codes[-1] == 202 and set(codes[1:-1]) <= {503}, [r.text for r in action_answers]
    for refused in action_answers[:-1]:
        assert refused.headers.get("Retry-After", "").isdigit() and refused.json()["error"] == "unavailable"
    assert unavailable, "ingest must answer 503 while Kafka is down"
    assert all(r.headers.get("Retry-After", "").isdigit() for r in unavailable)
    assert all(r.json()["error"] == "unavailable" for r in unavailable)
    page = httpx.get(f"{world['group'].running['ingest'].url}/metrics", timeout=10).text
    counted = [line for line in page.splitlines()
               if line.startswith("feedback_ingest_requests_total") and 'outcome="unavailable"' in line]
    assert counted and float(counted[0].rsplit(" ", 1)[1]) >= len(unavailable)
    send_all(world, "kafka-after", 10)
    assert_everything_indexed_once(world)
    assert_workers_alive(world)
    assert dead_letters(world, {"enricher", "indexer"}) == []


def test_smtp_and_sms_gateway_down_longer_than_the_retries(world, fault_stack, gateway):
    settings, group = world["settings"], world["group"]
    people = register(group.running["ingest"].url, settings, ["email"] * 4 + ["sms"] * 4,
                      ["fi", "sv", "en", "fi"] * 2, "outage")
    world["sent"].update({f"registered-{p['feedback_id']}": p["feedback_id"] for p in people})
    fault_stack.smtp.stop()
    gateway.stop()
    action_id = str(uuid.uuid4())
    nids = notify(settings, people, action_id)
    time.sleep(DELIVERY_OUTAGE_S)
    assert_workers_alive(world)
    receipts = [d for d in read_topic(settings, "closure.deliveries") if d["action_id"] == action_id]
    assert receipts == [], f"nothing may be final while the channels are down: {receipts}"
    fault_stack.smtp.start(fresh=False)
    gateway.start()
    email_ids = {n for n, p in nids.items() if p["channel"] == "email"}
    sms_ids = {n for n, p in nids.items() if p["channel"] == "sms"}
    wait_for(lambda: len(emails(fault_stack.maildir, email_ids)) == len(email_ids)
             and {d.key for d in gateway.by_path("/sms").values()} >= sms_ids, 240, "delivery after the outage")

    def final() -> list[dict]:
        got = [d for d in read_topic(settings, "closure.deliveries") if d["action_id"] == action_id]
        return got if len(got) >= len(nids) else []

    receipts = wait_for(final, 60, "a receipt for every notification")
    assert Counter(r["notification_id"] for r in receipts) == Counter({n: 1 for n in nids})
    assert {r["status"] for r in receipts} == {"delivered"}
    assert set(emails(fault_stack.maildir, email_ids).values()) == {1}
    # A replay of the notifications resends nothing that was delivered.
    sms_before = dict(gateway.by_path("/sms"))
    replays_before = sum(gateway.replays.values())
    notify(settings, people, action_id)
    time.sleep(15)
    assert set(emails(fault_stack.maildir, email_ids).values()) == {1}
    assert gateway.by_path("/sms").keys() == sms_before.keys()
    assert sum(gateway.replays.values()) == replays_before
    assert_workers_alive(world)


def test_a_poison_record_on_each_input_is_dead_lettered_alone(world):
    settings = world["settings"]
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    poison = {FEEDBACK_RECEIVED.name: "enricher", FEEDBACK_ENRICHED.name: "indexer",
              CLOSURE_ACTIONS.name: "closure", CLOSURE_NOTIFICATIONS.name: "notifier"}
    for topic in poison:
        producer.send(settings.topic(topic), key=b"poison", value=b'{"schema_version": 1, "broken": ')
        producer.send(settings.topic(topic), key=b"poison", value=json.dumps({"schema_version": 1}).encode())
    producer.flush(30)
    producer.close()
    after = send_all(world, "poison-after", 5)  # the enricher and indexer go on past them

    def letters() -> dict[str, Counter]:
        got: dict[str, Counter] = {}
        for d in dead_letters(world, set(poison.values())):
            if d["source_topic"] in {settings.topic(t) for t in poison}:
                got.setdefault(d["stage"], Counter())[d["error_type"]] += 1
        return got if set(got) == set(poison.values()) and all(sum(c.values()) >= 2 for c in got.values()) else {}

    got = wait_for(letters, 120, "a dead letter per poison record")
    assert all(c == Counter({"invalid_json": 1, "schema_violation": 1}) for c in got.values()), got
    wait_for(lambda: indexed(world, [world["sent"][k] for k in after]) == len(after), 120, "items after the poison")
    assert_workers_alive(world)


def test_sigkill_of_the_indexer_and_closure_mid_work_loses_nothing(world, fault_stack):
    settings, group = world["settings"], world["group"]
    keys = [f"kill-{i}" for i in range(60)]
    with _ingest(world) as client:
        for i, key in enumerate(keys):
            assert try_send(world, client, key, i, [])
            if i == 20:
                group.stop("indexer", sig=signal.SIGKILL)
    group.start("indexer")
    assert_everything_indexed_once(world)
    # The closure worker killed right after an action arrives, then restarted: the action is
    # still carried out once (notification ids are derived, the notifier drops repeats).
    people = register(group.running["ingest"].url, settings, ["email"] * 3, ["fi", "sv", "en"], "killclosure")
    world["sent"].update({f"registered-{p['feedback_id']}": p["feedback_id"] for p in people})
    wait_for(lambda: indexed(world, [p["feedback_id"] for p in people]) == 3, 120, "the respondents' feedback")
    resp = publish_action(world)
    assert resp.status_code == 202, resp.text
    group.stop("closure", sig=signal.SIGKILL)
    group.start("closure")
    from pipelines.closure import notification_id

    nids = {notification_id(resp.json()["action_id"], p["ref"]) for p in people}
    wait_for(lambda: len(emails(fault_stack.maildir, nids)) == len(nids), 180, "the action's emails")
    time.sleep(5)
    assert set(emails(fault_stack.maildir, nids).values()) == {1}
    assert_workers_alive(world)
