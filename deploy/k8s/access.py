#!/usr/bin/env python3
"""Who may use what on Kubernetes: the one place for each workload's Kafka rights and secrets.

    python deploy/k8s/access.py            # rewrite base/kafka/users.yaml (Strimzi KafkaUsers)
    python deploy/k8s/access.py --check    # exit 1 if the file is stale
    python deploy/k8s/access.py --table    # print both tables as Markdown

``KAFKA_ACCESS``: the topics (from services/topics.py) each workload reads and writes and
the consumer groups it commits in. Every workload connects as its own KafkaUser (SCRAM-SHA-512
over TLS), and the generated ACLs allow exactly these, nothing else: the enricher cannot read
``respondent.contacts``, ingest cannot read anything. KEDA reads a worker's lag as that worker
(TriggerAuthentication ``feedback-kafka`` takes the worker's own user from its Deployment).

``SECRETS``: the Secret keys each workload gets by ``secretKeyRef``, derived from the settings
its code reads (services/settings.py fields, grep the name in services/). The Deployments and
Jobs under base/ carry exactly these; tests/unit/test_deploy_k8s.py compares them, and a new
secret or a new use of one must be added here first. deploy/k8s/secrets.example.yaml lists
the Secrets an operator creates.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = Path(__file__).resolve().parent / "base" / "kafka" / "users.yaml"
CLUSTER = "feedback"
USER_PREFIX = "feedback-"  # KafkaUser (and its Secret, and the SCRAM user name) = prefix + workload

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from services.topics import (  # noqa: E402
    ALL_TOPICS, CLOSURE_ACTIONS, CLOSURE_DELIVERIES, CLOSURE_NOTIFICATIONS, FEEDBACK_DLQ, FEEDBACK_ENRICHED,
    FEEDBACK_RECEIVED, FEEDBACK_TREND_ALERTS, FEEDBACK_URGENT, GDPR_ERASURE, NOTIFICATION_LOG,
    RESPONDENT_CONTACTS, URGENT_ACKS, INSIGHTS_EMERGING, TopicSpec,
)

# Consumer groups: services/workers/runtime.group_id (<prefix>feedback-<stage>) with the empty
# topic prefix of deploy/k8s (FEEDBACK_TOPIC_PREFIX ""); the faust app id has the same form.
ERASABLE = (FEEDBACK_RECEIVED, FEEDBACK_ENRICHED, FEEDBACK_URGENT)  # feedback tombstoned on erasure


@dataclass(frozen=True)
class KafkaAccess:
    """What one workload does on Kafka."""

    reads: tuple[TopicSpec, ...] = ()
    writes: tuple[TopicSpec, ...] = ()
    groups: tuple[str, ...] = ()  # consumer groups it joins or commits offsets in
    group_prefixes: tuple[str, ...] = ()  # groups it makes per use (e.g. one per redrive stage)
    owns_prefix: str | None = None  # topics it declares itself (faust's internal topics)
    creates: bool = False  # may create the pipeline's topics (topics-create)
    why: str = ""


KAFKA_ACCESS: dict[str, KafkaAccess] = {
    "ingest": KafkaAccess(
        writes=(FEEDBACK_RECEIVED, RESPONDENT_CONTACTS, FEEDBACK_DLQ),
        why="writes submissions, encrypted contacts and rejected submissions"),
    "api": KafkaAccess(
        reads=(RESPONDENT_CONTACTS,),
        writes=(CLOSURE_ACTIONS, RESPONDENT_CONTACTS, NOTIFICATION_LOG, GDPR_ERASURE, URGENT_ACKS, *ERASABLE),
        why="publishes actions and urgent acknowledgements; opt-out rewrites a contact; erasure tombstones "
            "contact, log and feedback"),
    "enricher": KafkaAccess(
        reads=(FEEDBACK_RECEIVED,), writes=(FEEDBACK_ENRICHED, FEEDBACK_URGENT, FEEDBACK_DLQ),
        groups=("feedback-enricher",)),
    "indexer": KafkaAccess(
        reads=(FEEDBACK_ENRICHED,), writes=(*ERASABLE, FEEDBACK_DLQ), groups=("feedback-indexer",),
        why="tombstones the feedback of erased respondents it drops"),
    "closure": KafkaAccess(
        reads=(CLOSURE_ACTIONS,), writes=(CLOSURE_NOTIFICATIONS, FEEDBACK_DLQ), groups=("feedback-closure",)),
    "notifier": KafkaAccess(
        reads=(CLOSURE_NOTIFICATIONS, RESPONDENT_CONTACTS, NOTIFICATION_LOG),
        writes=(NOTIFICATION_LOG, CLOSURE_DELIVERIES, FEEDBACK_DLQ),
        groups=("feedback-notifier", "feedback-notifier-contacts"),
        why="-contacts remembers how far contact records were checked"),
    "trends": KafkaAccess(
        reads=(FEEDBACK_ENRICHED,), writes=(FEEDBACK_TREND_ALERTS,), groups=("feedback-trends",),
        owns_prefix="feedback-trends-", why="faust's observations topic and table changelog"),
    "urgent": KafkaAccess(
        reads=(FEEDBACK_URGENT, URGENT_ACKS), writes=(FEEDBACK_DLQ,), groups=("feedback-urgent",),
        why="emails duty addresses, records acknowledgements, escalates"),
    "insights-emerging": KafkaAccess(writes=(INSIGHTS_EMERGING,), why="publishes emerging topics (a nightly CronJob)"),
    "topics-create": KafkaAccess(creates=True, why="creates missing topics (Strimzi's KafkaTopics do too)"),
    # `feedback replay`, `redrive`, `reindex`, `contacts rotate-keys`, `erase` run by an operator
    # (deploy/RUNBOOK.md): every pipeline topic, and the redrive groups (services/ops/replay.py).
    "operator": KafkaAccess(
        reads=ALL_TOPICS, writes=ALL_TOPICS, group_prefixes=("feedback-dlq-redrive",),
        why="runbook commands (replay, redrive, reindex, key rotation, erasure)"),
}

# env var -> (Secret, key, optional); the Secrets are created by the operator
# (secrets.example.yaml), feedback-es-app-user is also ECK's file realm.
SECRET_SOURCES: dict[str, tuple[str, str, bool]] = {
    "FEEDBACK_ES_USERNAME": ("feedback-es-app-user", "username", False),
    "FEEDBACK_ES_PASSWORD": ("feedback-es-app-user", "password", False),
    "FEEDBACK_INGEST_API_KEYS": ("feedback-secrets", "ingest-api-keys", False),
    "FEEDBACK_API_TOKENS": ("feedback-secrets", "api-tokens", False),
    "FEEDBACK_PSEUDONYM_KEY": ("feedback-secrets", "pseudonym-key", False),
    "FEEDBACK_CONTACT_KEYS": ("feedback-secrets", "contact-keys", False),
    "FEEDBACK_SMTP_USERNAME": ("feedback-secrets", "smtp-username", True),
    "FEEDBACK_SMTP_PASSWORD": ("feedback-secrets", "smtp-password", True),
}
ES_APP_USER = ("FEEDBACK_ES_USERNAME", "FEEDBACK_ES_PASSWORD")

# Which secret each workload reads, and the code that reads it. Besides these, every workload
# with a KafkaUser gets FEEDBACK_KAFKA_PASSWORD from that user's Secret (Strimzi creates it).
SECRETS: dict[str, tuple[str, ...]] = {
    # api keys per channel (apps/ingest.py), pseudonym HMAC and contact encryption (ingest.py).
    "ingest": ("FEEDBACK_INGEST_API_KEYS", "FEEDBACK_PSEUDONYM_KEY", "FEEDBACK_CONTACT_KEYS"),
    # search and actions (Elasticsearch), lead tokens (apps/tokens.py), opt-out links and
    # erasure by contact (apps/privacy_api.py, ops/erasure.py: pseudonym key, contact keys).
    "api": (*ES_APP_USER, "FEEDBACK_API_TOKENS", "FEEDBACK_PSEUDONYM_KEY", "FEEDBACK_CONTACT_KEYS"),
    # Dead letters keep the original bytes encrypted with the contact key (issue 10, item 2).
    "enricher": ("FEEDBACK_CONTACT_KEYS",),
    "indexer": (*ES_APP_USER, "FEEDBACK_CONTACT_KEYS"),
    "closure": (*ES_APP_USER, "FEEDBACK_CONTACT_KEYS"),
    # contacts (vault), opt-out links (pseudonym key), the SMTP relay's login.
    "notifier": ("FEEDBACK_CONTACT_KEYS", "FEEDBACK_PSEUDONYM_KEY", "FEEDBACK_SMTP_USERNAME",
                 "FEEDBACK_SMTP_PASSWORD"),
    "trends": (),
    # urgent-item state (Elasticsearch), dead letters, duty and escalation emails.
    "urgent": (*ES_APP_USER, "FEEDBACK_CONTACT_KEYS", "FEEDBACK_SMTP_USERNAME", "FEEDBACK_SMTP_PASSWORD"),
    "topics-create": (),
    # The weekly thanks digest (CronJob; services/ops/thanks_digest.py): reads feedback and records
    # sent digests in Elasticsearch, mails team addresses through the SMTP relay. No Kafka user.
    "thanks-digest": (*ES_APP_USER, "FEEDBACK_SMTP_USERNAME", "FEEDBACK_SMTP_PASSWORD"),
    # Index template and index as the least-privilege app user.
    "es-setup": ES_APP_USER,
    # The insights CronJobs read the feedback alias and write their own indices (services/ops/insights.py).
    "insights-drivers": ES_APP_USER,
    "insights-emerging": ES_APP_USER,
}


def user_name(workload: str) -> str:
    """The KafkaUser (and Secret, and SCRAM user name) of a workload."""
    return f"{USER_PREFIX}{workload}"


def acls(access: KafkaAccess) -> list[tuple[str, str, str, list[str]]]:
    """(resource type, name, pattern type, operations) of one workload, sorted."""
    ops: dict[tuple[str, str, str], set[str]] = {}

    def allow(kind: str, name: str, pattern: str, *operations: str) -> None:
        ops.setdefault((kind, name, pattern), set()).update(operations)

    for t in access.reads:
        allow("topic", t.name, "literal", "Read", "Describe")
    for t in access.writes:
        allow("topic", t.name, "literal", "Write", "Describe")
    if access.creates:
        for t in ALL_TOPICS:
            allow("topic", t.name, "literal", "Create", "Describe", "DescribeConfigs")
    if access.owns_prefix:
        allow("topic", access.owns_prefix, "prefix", "Create", "Describe", "DescribeConfigs", "Read", "Write")
    for g in access.groups:
        allow("group", g, "literal", "Read", "Describe")
    for g in access.group_prefixes:
        allow("group", g, "prefix", "Read", "Describe")
    return [(k, n, p, sorted(o)) for (k, n, p), o in sorted(ops.items())]


def render() -> str:
    out = [
        "# GENERATED by deploy/k8s/access.py from its KAFKA_ACCESS table and services/topics.py:",
        "# do not edit by hand. Strimzi's user operator creates one SCRAM-SHA-512 user per",
        "# workload, its Secret (same name, key `password`) and exactly these ACLs.",
    ]
    for workload, access in KAFKA_ACCESS.items():
        out += [
            "---",
            "apiVersion: kafka.strimzi.io/v1",
            "kind: KafkaUser",
            "metadata:",
            f"  name: {user_name(workload)}",
            "  labels:",
            f"    strimzi.io/cluster: {CLUSTER}",
            "    app.kubernetes.io/part-of: feedback-pipeline",
            "    app.kubernetes.io/component: kafka-user",
        ]
        if access.why:
            out += ["  annotations:", f"    feedback.pipeline/description: \"{access.why}\""]
        out += [
            "spec:",
            "  authentication:",
            "    type: scram-sha-512",
            "  authorization:",
            "    type: simple",
            "    acls:",
        ]
        for kind, name, pattern, operations in acls(access):
            out += [
                "      - resource:",
                f"          type: {kind}",
                f"          name: {name}",
                f"          patternType: {pattern}",
                f"        operations: [{', '.join(operations)}]",
            ]
    return "\n".join(out) + "\n"


def table() -> str:
    """Both tables as Markdown (for reviews and the README)."""
    rows = ["| Workload | Reads | Writes | Groups | Secrets |", "| --- | --- | --- | --- | --- |"]
    for workload in dict.fromkeys([*KAFKA_ACCESS, *SECRETS]):
        a = KAFKA_ACCESS.get(workload, KafkaAccess())
        reads = "all" if a.reads == ALL_TOPICS else ", ".join(t.name for t in a.reads)
        writes = "all" if a.writes == ALL_TOPICS else ", ".join(t.name for t in a.writes)
        groups = ", ".join([*a.groups, *(f"{g}*" for g in a.group_prefixes)])
        secrets = ", ".join(SECRETS.get(workload, ()))
        rows.append(f"| {workload} | {reads} | {writes} | {groups} | {secrets} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed file is not current")
    parser.add_argument("--table", action="store_true", help="print the access and secrets tables")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    if args.table:
        sys.stdout.write(table())
        return 0
    text = render()
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale: run python deploy/k8s/access.py", file=sys.stderr)
            return 1
        print(f"{args.output} is current")
        return 0
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
