"""Pure steps on respondent.contacts records: consent withdrawal and key rotation.

Records are the JSON objects of schemas/events/respondent.contacts.v1.json; a
``None`` value is a tombstone (the respondent was erased).
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

Raw = bytes | None


def withdraw_consent(record: dict[str, Any], now: str) -> dict[str, Any]:
    """The record with follow-up consent withdrawn (the opt-out link)."""
    consent = {**record["consent"], "follow_up": False, "withdrawn_at": now}
    return {**record, "consent": consent, "updated_at": now}


def latest_by_key(records: Iterable[tuple[bytes, Raw]]) -> dict[bytes, Raw]:
    """The value a compacted topic settles on per key, from records in offset order."""
    out: dict[bytes, Raw] = {}
    for key, value in records:
        out[key] = value
    return out


def needs_rotation(raw: Raw, current_key_id: str) -> bool:
    """Whether a live record is encrypted under an older key than the current one."""
    if raw is None:
        return False
    return json.loads(raw).get("key_id") != current_key_id


def clobbered(written: dict[bytes, bytes], after: Iterable[tuple[bytes, Raw]]) -> dict[bytes, Raw]:
    """Keys whose newer value the rotation overwrote, with the value to write back.

    ``written`` holds what the rotation produced per key; ``after`` every record
    appended to the topic since the rotation read its snapshot, in offset order
    (per key that is per partition, which is all compaction cares about). If someone
    else wrote a key after the snapshot (a new submission, an opt-out, an erasure's
    tombstone) and the rotation's stale copy landed after it, the rotation must
    write that newer value again. A foreign write after the rotation's is fine.
    """
    state: dict[bytes, tuple[Raw, bool]] = {}  # key -> (latest foreign value seen, ours is last)
    foreign_seen: set[bytes] = set()
    for key, value in after:
        if key not in written:
            continue
        if value is not None and value == written[key]:
            state[key] = (state.get(key, (None, False))[0], True)
        else:
            foreign_seen.add(key)
            state[key] = (value, False)
    return {k: v for k, (v, ours_last) in state.items() if ours_last and k in foreign_seen}
