"""The dead-letter envelope of feedback.dlq: what is kept in clear and what only sealed.

A record no stage could process may hold anything a resident wrote: raw text, and for a
submission ingest rejected the whole request body with the contact details. So a dead
letter keeps in clear only what an operator needs to find the cause: the stage, the
error type, a reason passed through :func:`pipelines.redaction.redact` (a schema
error can quote a field's value), when it failed, and where the record came from
(topic, partition, offset, feedback_id). The original bytes and the unredacted reason
are sealed with the contact key (:class:`pipelines.vault.ContactVault`: Fernet, the
newest of ``contact_keys``), and only a redrive opens them again, with any configured
key, so ``feedback contacts rotate-key``'s key list also opens older dead letters.

Version 1 records (written before sealing) kept the bytes in clear as
``original_b64``; :func:`unseal` still reads them, so a redrive across the upgrade loses
nothing. They age out with the topic's retention (30 days).
"""
from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any

from pipelines.redaction import redact
from pipelines.vault import ContactVault

SCHEMA_VERSION = 2
REASON_MAX = 2000
# Feedback ids are UUIDs (pipelines/intake.py); anything else in their place stays sealed.
_FEEDBACK_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class Unsealed:
    """What a redrive needs from a dead letter: the original bytes, the full reason and the
    feedback_id it was keyed by (None if it had none)."""

    original: bytes
    reason: str
    feedback_id: str | None = None


def _in_clear(text: str) -> str:
    """``text`` as it may stand in clear: personal identifiers replaced by placeholders."""
    return redact(text).text


def seal(vault: ContactVault, *, stage: str, reason: str, error_type: str, original: bytes | None,
         failed_at: str, feedback_id: str | None = None, topic: str | None = None,
         partition: int | None = None, offset: int | None = None) -> dict[str, Any]:
    """The feedback.dlq record (schema v2) of one failed record; ``original`` only sealed."""
    reason = reason[:REASON_MAX]
    payload = {"reason": reason, "original_b64": base64.b64encode(original or b"").decode("ascii"),
               "feedback_id": feedback_id}
    # A feedback_id is a key we made; anything else in its place (a broken record) stays sealed.
    clear_id = feedback_id if feedback_id is not None and _FEEDBACK_ID.fullmatch(feedback_id) else None
    return {
        "schema_version": SCHEMA_VERSION,
        "stage": stage,
        "reason": _in_clear(reason)[:REASON_MAX],
        "error_type": _in_clear(error_type),
        "failed_at": failed_at,
        "feedback_id": clear_id,
        "source_topic": topic,
        "source_partition": partition,
        "source_offset": offset,
        "key_id": vault.key_id,
        "sealed": vault.encrypt_bytes(json.dumps(payload, ensure_ascii=False).encode("utf-8")),
    }


def unseal(vault: ContactVault, record: dict[str, Any]) -> Unsealed:
    """The original bytes and full reason of a feedback.dlq record (v2 sealed, or v1 in clear).

    Raises ValueError when no configured contact key opens it (the key was retired too
    early) or the record is neither version.
    """
    version = record.get("schema_version")
    if version == 1 and isinstance(record.get("original_b64"), str):
        return Unsealed(base64.b64decode(record["original_b64"]), str(record.get("reason", "")),
                        record.get("feedback_id"))
    if version != SCHEMA_VERSION or not isinstance(record.get("sealed"), str):
        raise ValueError(f"dead letter: unknown schema_version {version!r}")
    payload = json.loads(vault.decrypt_bytes(record["sealed"], "dead letter"))
    return Unsealed(base64.b64decode(payload["original_b64"]), payload["reason"], payload.get("feedback_id"))
