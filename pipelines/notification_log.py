"""The notifier's per-respondent log: which notifications were handled, how, and when.

One small JSON object per respondent_ref, ``{notification_id: [status, at, receipt_sent]}``,
kept in the compacted topic closure.notification_log keyed by the ref (co-partitioned with closure.notifications).
It gives three things: idempotency (a notification already handled is not sent
again), crash recovery (``sending`` means "handed to the channel, outcome unknown")
and the frequency cap (messages handed to a channel in the last 7 days).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from pipelines.clock import parse_ts, utc_iso

SENDING = "sending"
DELIVERED = "delivered"
FAILED = "failed"
# Outcomes that end a notification's handling (its receipt is written). All but FAILED are
# never attempted again; a failed one is tried again when a replay brings it back.
FINAL = frozenset({DELIVERED, FAILED, "skipped_no_consent", "skipped_no_contact", "skipped_frequency_cap"})
WEEK = timedelta(days=7)
# Longer than closure.actions is kept (365 days): a replayed action is still recognised.
KEEP = timedelta(days=400)


@dataclass(frozen=True)
class Entry:
    status: str
    at: datetime
    receipt_sent: bool = False
    channel: str | None = None
    language: str | None = None
    attempts: int = 0


RespondentLog = dict[str, Entry]


def _ts(value: str) -> datetime:
    return parse_ts(value)


def load(raw: bytes | str | None) -> RespondentLog:
    """Parse a table value (None for a respondent never notified)."""
    if not raw:
        return {}
    return {nid: Entry(v[0], _ts(v[1]), *v[2:6]) for nid, v in json.loads(raw).items()}


def dump(log: RespondentLog) -> bytes:
    return json.dumps({nid: [e.status, utc_iso(e.at),
                             e.receipt_sent, e.channel, e.language, e.attempts] for nid, e in sorted(log.items())},
                      separators=(",", ":")).encode()


def with_entry(log: RespondentLog, nid: str, entry: Entry, now: datetime) -> RespondentLog:
    """A copy of ``log`` with ``nid`` set and entries older than KEEP dropped."""
    kept = {k: e for k, e in log.items() if now - e.at <= KEEP and k != nid}
    kept[nid] = entry
    return kept


def sent_in_window(log: RespondentLog, now: datetime, exclude: str | None = None, window: timedelta = WEEK) -> int:
    """Messages handed to a channel (delivered, or maybe: sending) within ``window`` before ``now``."""
    return sum(1 for nid, e in log.items()
               if nid != exclude and e.status in (DELIVERED, SENDING) and now - e.at < window)


def over_cap(log: RespondentLog, nid: str, now: datetime, max_per_week: int) -> bool:
    """Whether sending ``nid`` now would exceed the respondent's weekly cap (0 = no cap)."""
    return max_per_week > 0 and sent_in_window(log, now, exclude=nid) >= max_per_week


@dataclass(frozen=True)
class Failure:
    """Why a send failed, as a receipt may keep it: a coarse class and the channel's status
    code (SMTP reply code, HTTP status), never the relay's reply text, which may echo the
    address."""

    error_class: str  # recipient_refused, rejected, unavailable, not_configured, no_address, error
    status_code: int | None = None

    def reason(self, deadline_passed: bool = False) -> str:
        """The receipt's reason: e.g. ``recipient_refused (550)``."""
        code = f" ({self.status_code})" if self.status_code is not None else ""
        return f"{'delivery deadline passed: ' if deadline_passed else ''}{self.error_class}{code}"


def receipt(note: dict[str, object], status: str, channel: str | None, attempts: int, at: str,
            reason: str | None = None, language: str | None = None,
            failure: Failure | None = None) -> dict[str, object]:
    """The closure.deliveries receipt of one notification (no contact details, no relay text)."""
    return {"schema_version": 1, "notification_id": note["notification_id"], "action_id": note["action_id"],
            "respondent_ref": note["respondent_ref"], "channel": channel, "language": language,
            "status": status, "attempts": attempts, "reason": reason,
            "status_code": failure.status_code if failure else None,
            "error_class": failure.error_class if failure else None, "at": at}
