"""Every Kafka topic of the pipeline, in one place: name, key, partitions, configs, schema.

``feedback topics create`` creates exactly these; no service relies on auto-creation.
Topics that are joined by key (contacts, notifications and the notification log, all
keyed by respondent_ref) must keep the same partition count so they stay co-partitioned.
"""
from __future__ import annotations

from dataclasses import dataclass, field

DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True)
class TopicSpec:
    """One topic: its base name (prefix added by settings), key and configs."""

    name: str
    key: str
    schema: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)
    description: str = ""


# Topics that hold one respondent's data are compacted ("compact,delete" for the feedback
# topics: time retention as before) so that an erasure's tombstone (a null value under
# the key) removes the record within about two days instead of at retention:
# max.compaction.lag.ms forces the cleaner onto a record that old and segment.ms rolls
# the segment it is in (the active segment is never cleaned). Both follow the setting
# ``erasure_compaction_lag_ms`` through :func:`topic_config` (`feedback topics create`);
# the value here is its default and what the Strimzi topics are generated with.
ERASURE_LAG_MS = DAY_MS
ERASURE_LAG_KEYS = ("max.compaction.lag.ms", "segment.ms")
ERASABLE = {"min.compaction.lag.ms": "0", **{k: str(ERASURE_LAG_MS) for k in ERASURE_LAG_KEYS},
            "delete.retention.ms": str(DAY_MS)}

FEEDBACK_RECEIVED = TopicSpec(
    "feedback.received", "feedback_id", "feedback.received", 6,
    # Raw text may still hold personal data: keep it only as long as replay needs.
    {"retention.ms": str(14 * DAY_MS), "cleanup.policy": "compact,delete", **ERASABLE},
    "Validated feedback from every channel, raw text, no contact details.",
)
FEEDBACK_ENRICHED = TopicSpec(
    "feedback.enriched", "feedback_id", "feedback.enriched", 6,
    {"retention.ms": str(90 * DAY_MS), "cleanup.policy": "compact,delete", **ERASABLE},
    "Redacted, embedded and classified feedback; the indexer's input and the replay source.",
)
FEEDBACK_DLQ = TopicSpec(
    "feedback.dlq", "feedback_id", "feedback.dlq", 1,
    {"retention.ms": str(30 * DAY_MS), "cleanup.policy": "delete"},
    "Events any stage could not process, with stage, reason and the original bytes.",
)
FEEDBACK_URGENT = TopicSpec(
    "feedback.urgent", "feedback_id", "feedback.enriched", 1,
    {"retention.ms": str(30 * DAY_MS), "cleanup.policy": "compact,delete", **ERASABLE},
    "Enriched feedback flagged urgent (safeguarding, self-harm, threats).",
)
URGENT_ACKS = TopicSpec(
    "feedback.urgent_acks", "feedback_id", "feedback.urgent_acks", FEEDBACK_URGENT.partitions,
    # Who acknowledged which urgent item when: staff ids and times only, no text. Kept a year
    # as the audit trail; the urgent worker's state lies in Elasticsearch (<alias>-urgent).
    {"retention.ms": str(365 * DAY_MS), "cleanup.policy": "delete"},
    "A service lead acknowledged an urgent item in the console (read by the urgent worker).",
)
RESPONDENT_CONTACTS = TopicSpec(
    "respondent.contacts", "respondent_ref", "respondent.contacts", 3,
    # Compacted: the latest contact per respondent is the truth; a tombstone erases it.
    {"cleanup.policy": "compact", **ERASABLE},
    "Encrypted contact details and consent, keyed by the pseudonymous respondent_ref.",
)
CLOSURE_ACTIONS = TopicSpec(
    "closure.actions", "action_id", "closure.actions", 1,
    {"retention.ms": str(365 * DAY_MS), "cleanup.policy": "delete"},
    "\"You said, we did\" actions published by service leads.",
)
FEEDBACK_TREND_ALERTS = TopicSpec(
    "feedback.trend_alerts", "alert_id", "feedback.trend_alerts", 1,
    {"retention.ms": str(90 * DAY_MS), "cleanup.policy": "delete"},
    "A theme's daily count at a unit rose well above its recent baseline (trends worker).",
)
CLOSURE_NOTIFICATIONS = TopicSpec(
    "closure.notifications", "respondent_ref", "closure.notifications", 3,
    {"retention.ms": str(30 * DAY_MS), "cleanup.policy": "delete"},
    "One notification per consenting respondent per action.",
)
CLOSURE_DELIVERIES = TopicSpec(
    "closure.deliveries", "notification_id", "closure.deliveries", 3,
    {"retention.ms": str(90 * DAY_MS), "cleanup.policy": "delete"},
    "Delivery receipts of notifications.",
)
NOTIFICATION_LOG = TopicSpec(
    "closure.notification_log", "respondent_ref", "closure.notification_log", CLOSURE_NOTIFICATIONS.partitions,
    # The notifier's state (services/workers/notifier.py): compacted, so the latest log per respondent
    # is kept for as long as it has entries (400 days) and an erasure's tombstone removes it.
    {"cleanup.policy": "compact", **ERASABLE},
    "The notifier's log per respondent: which notifications were sent, how, when (pseudonymous).",
)
GDPR_ERASURE = TopicSpec(
    "gdpr.erasure", "respondent_ref", "gdpr.erasure", 1,
    # Proof that an erasure was done (who asked, when, what was removed): the pseudonymous
    # ref and counts only, never contact details or text.
    {"retention.ms": str(3 * 365 * DAY_MS), "cleanup.policy": "delete"},
    "Confirmation of each completed erasure of a respondent.",
)

INSIGHTS_EMERGING = TopicSpec(
    "insights.emerging", "topic_id", "insights.emerging", 1,
    {"retention.ms": str(90 * DAY_MS), "cleanup.policy": "delete"},
    "A new kind of feedback the taxonomy covers poorly grew in a service area (`feedback insights emerging`).",
)


def topic_config(spec: TopicSpec, erasure_lag_ms: int = ERASURE_LAG_MS) -> dict[str, str]:
    """The configs a topic is created with: an erasable topic's lag keys set to ``erasure_lag_ms``."""
    config = dict(spec.config)
    if "max.compaction.lag.ms" in config:
        config.update({k: str(erasure_lag_ms) for k in ERASURE_LAG_KEYS})
    return config


ALL_TOPICS: tuple[TopicSpec, ...] = (
    FEEDBACK_RECEIVED,
    FEEDBACK_ENRICHED,
    FEEDBACK_DLQ,
    FEEDBACK_URGENT,
    URGENT_ACKS,
    FEEDBACK_TREND_ALERTS,
    RESPONDENT_CONTACTS,
    CLOSURE_ACTIONS,
    CLOSURE_NOTIFICATIONS,
    CLOSURE_DELIVERIES,
    NOTIFICATION_LOG,
    GDPR_ERASURE,
    INSIGHTS_EMERGING,
)
