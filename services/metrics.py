"""Every Prometheus metric of the pipeline, defined once.

Labels carry only bounded, non-personal values (stage, channel, outcome, type):
never unit-free identifiers, respondent references or text.
"""
from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

STAGES = ("ingest", "enricher", "indexer", "closure", "notifier", "urgent")

INGEST_REQUESTS = Counter(
    "feedback_ingest_requests_total",
    "Feedback submissions received over HTTP or import, by channel and outcome.",
    ["channel", "outcome"],  # outcome: accepted, duplicate, invalid, unauthorized
)
EVENTS_PROCESSED = Counter(
    "feedback_events_processed_total",
    "Events a stage finished, by outcome (ok, dead_lettered).",
    ["stage", "outcome"],
)
DEAD_LETTERS = Counter(
    "feedback_dead_letters_total",
    "Events sent to the dead-letter topic, by stage and error type.",
    ["stage", "error_type"],
)
STAGE_SECONDS = Histogram(
    "feedback_stage_duration_seconds",
    "Time a stage spent on one batch of events.",
    ["stage"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
# Seconds-scale latency buckets shared by the per-stage histograms the e2e bench reads.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60)
QUEUE_SECONDS = Histogram(
    "feedback_queue_wait_seconds",
    "Time a record waited on a stage's input topic: from its producer's CreateTime until the stage "
    "began handling it.",
    ["stage"],
    buckets=LATENCY_BUCKETS,
)
ENRICH_STEP_SECONDS = Histogram(
    "feedback_enrich_step_seconds",
    "Time the enricher spent on one batch per step (prepare: redaction and language; embed; classify; "
    "build: the enriched event).",
    ["step"],
    buckets=LATENCY_BUCKETS,
)
END_TO_END_SECONDS = Histogram(
    "feedback_ingest_to_index_seconds",
    "Time from ingest (received_at) until Elasticsearch acknowledged the document.",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
)
BATCH_SIZE = Histogram(
    "feedback_batch_size_events",
    "Events per batch handled by a stage.",
    ["stage"],
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
)
REDACTIONS = Counter(
    "feedback_redactions_total",
    "Personal data items replaced by placeholders, by type.",
    ["type"],
)
CLASSIFIED = Counter(
    "feedback_classified_total",
    "Enriched items by sentiment label and language.",
    ["sentiment", "language"],
)
URGENT = Counter(
    "feedback_urgent_items_total",
    "Items flagged urgent (safeguarding, self-harm, threats) and sent to the urgent topic.",
)
DUPLICATES = Counter(
    "feedback_near_duplicates_total",
    "Items flagged as near-duplicates of an earlier item.",
)
CLOSURE_ACTIONS = Counter(
    "feedback_closure_actions_total",
    "Closure actions processed by the closure worker, by outcome.",
    ["outcome"],
)
NOTIFICATIONS = Counter(
    "feedback_notifications_total",
    "Notification outcomes by delivery channel and status.",
    ["channel", "status"],
)
NOTIFICATION_SEND_SECONDS = Histogram(
    "feedback_notification_send_seconds",
    "Time to hand one notification to its delivery channel.",
    ["channel"],
)
SERVICE_UP = Gauge(
    "feedback_service_ready",
    "1 when the service is started and its dependencies answer.",
    ["service"],
)
DEPENDENCY_WAITS = Counter(
    "feedback_dependency_waits_total",
    "Back-offs of a worker while a dependency (Kafka, Elasticsearch, SMTP, gateway) was unavailable, "
    "by stage and error type.",
    ["stage", "error_type"],
)
# Labels from schemas/units.json and schemas/taxonomy.json only (bounded; "other" otherwise).
TREND_ALERTS = Counter(
    "feedback_trend_alerts_total",
    "Spikes of a theme's daily count above its recent baseline, by service area and theme.",
    ["service_area", "theme"],
)
NOTIFICATIONS_RESUMED = Counter(
    "feedback_notifications_resumed_total",
    "Notifications found handed-to-channel-but-unconfirmed after a crash, sent again with the same "
    "Message-ID / Idempotency-Key.",
    ["channel"],
)
# Unit codes come from schemas/units.json: a bounded label set, and not personal.
CLOSURE_RATE = Gauge(
    "feedback_closure_rate_ratio",
    "Share of a unit's feedback (received within the metrics window) answered by a published action.",
    ["unit"],
)
CLOSURE_MEDIAN_HOURS = Gauge(
    "feedback_closure_median_hours",
    "Median hours from receiving feedback to the first action that answered it, per unit.",
    ["unit"],
)
OPT_OUTS = Counter(
    "feedback_opt_outs_total",
    "Opt-out link uses by outcome (withdrawn, already_withdrawn, no_contact, invalid, expired).",
    ["outcome"],
)
ERASURES = Counter(
    "feedback_erasures_total",
    "Respondents erased, by how the request identified them (ref, email, phone).",
    ["identified_by"],
)
ERASED_DROPPED = Counter(
    "feedback_erased_items_dropped_total",
    "Feedback of an already erased respondent that the indexer dropped while in flight.",
)
INSIGHTS_DECISIONS = Counter(
    "feedback_insights_decisions_total",
    "Emerging topics a lead decided on in the console, by decision (promoted, dismissed).",
    ["decision"],
)
CONSOLE_LOGINS = Counter(
    "feedback_console_logins_total",
    "Service-lead console sign-ins by outcome (ok, rejected, throttled).",
    ["outcome"],
)
AUTH_REFUSALS = Counter(
    "feedback_auth_refusals_total",
    "Requests refused for a wrong credential (rejected) or too many of them (throttled), by surface "
    "(console, api, ingest).",
    ["surface", "outcome"],
)

# The urgent worker (services/workers/urgent.py); service areas from schemas/units.json.
URGENT_EMAILS = Counter(
    "feedback_urgent_emails_total",
    "Emails about urgent feedback handed to SMTP, by kind (duty: the unit's duty address; "
    "escalation: the service area's address) and service area.",
    ["kind", "service_area"],
)
URGENT_ACK_SECONDS = Histogram(
    "feedback_urgent_time_to_acknowledge_seconds",
    "Time from the duty email about an urgent item until a lead acknowledged it in the console.",
    ["service_area"],
    buckets=(60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400),
)
URGENT_ESCALATIONS = Counter(
    "feedback_urgent_escalations_total",
    "Urgent items nobody acknowledged within the configured time, escalated to the service area.",
    ["service_area"],
)
URGENT_OPEN = Gauge(
    "feedback_urgent_open_items",
    "Urgent items not yet acknowledged (open or escalated), per service area.",
    ["service_area"],
)

# Thanks to the team (services/ops/thanks_digest.py, services/apps/thanks_console.py).
THANKS_DIGESTS = Counter(
    "feedback_thanks_digests_total",
    "Weekly thanks digests by outcome (sent; already_sent: a rerun found the unit's record; no_thanks: "
    "nothing to thank for that week; failed: the SMTP server refused or was unreachable).",
    ["outcome"],
)
THANKS_QUOTES_PICKED = Counter(
    "feedback_thanks_quotes_picked_total",
    "Quotes service leads picked into the thanks training set in the console.",
)


def exposition() -> tuple[bytes, str]:
    """Every metric in the Prometheus text format, and its content type as aiohttp wants it
    (the charset is set separately there)."""
    content_type = "; ".join(p.strip() for p in CONTENT_TYPE_LATEST.split(";") if "charset" not in p)
    return generate_latest(), content_type
