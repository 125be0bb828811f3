"""The dead-letter envelope (pipelines/dead_letters.py): nothing personal in clear, and a
redrive gets the exact bytes back, also after a contact key rotation."""
from __future__ import annotations

import base64
import json

import pytest
from cryptography.fernet import Fernet

from pipelines.dead_letters import seal, unseal
from pipelines.vault import ContactVault
from schemas.validate import event_errors
from services.adapters.kafka_io import dead_letter

EMAIL, PHONE = "matti.meikalainen@example.fi", "040 123 4567"
TEXT = "Lääkäri oli töykeä ja odotin neljä tuntia päivystyksessä"
FID = "0b9e4c1e-2f7a-4c55-9d2e-8a1f3b6c7d90"
ORIGINAL = json.dumps({"feedback_id": FID, "text": TEXT, "contact": {"email": EMAIL, "phone": PHONE}},
                      ensure_ascii=False).encode()
# A schema error quotes the value it refused, as jsonschema does.
REASON = f"schema: contact.email: '{EMAIL}' is not valid; contact.phone: '{PHONE}' is too long"


def _letter(vault: ContactVault) -> dict:
    return seal(vault, stage="enricher", reason=REASON, error_type="schema_violation", original=ORIGINAL,
                failed_at="2026-01-02T03:04:05Z", feedback_id=FID, topic="feedback.received",
                partition=2, offset=41)


def test_round_trip_gives_back_the_bytes_and_the_full_reason():
    vault = ContactVault([Fernet.generate_key().decode()])
    letter = _letter(vault)
    assert event_errors("feedback.dlq", letter) == []
    opened = unseal(vault, letter)
    assert opened.original == ORIGINAL and opened.reason == REASON and opened.feedback_id == FID
    assert letter["feedback_id"] == FID  # ours: a UUID, kept in clear for the redrive's key


def test_no_contact_detail_or_text_is_in_clear():
    vault = ContactVault([Fernet.generate_key().decode()])
    raw = json.dumps(_letter(vault), ensure_ascii=False)
    for secret in (EMAIL, PHONE, "0401234567", TEXT, "töykeä", "matti.meikalainen"):
        assert secret not in raw
    # Nor base64 of them (what the record kept before): the bytes exist only as ciphertext.
    assert base64.b64encode(ORIGINAL).decode()[:40] not in raw
    letter = json.loads(raw)
    assert letter["reason"].startswith("schema: contact.email: '[EMAIL]'") and "[PHONE]" in letter["reason"]
    assert (letter["stage"], letter["source_topic"], letter["source_partition"], letter["source_offset"],
            letter["failed_at"]) == ("enricher", "feedback.received", 2, 41, "2026-01-02T03:04:05Z")


def test_a_feedback_id_that_is_not_ours_stays_sealed():
    vault = ContactVault([Fernet.generate_key().decode()])
    letter = seal(vault, stage="indexer", reason="x", error_type="schema_violation", original=b"{}",
                  failed_at="2026-01-02T03:04:05Z", feedback_id=EMAIL)
    assert letter["feedback_id"] is None and unseal(vault, letter).feedback_id == EMAIL


def test_rotated_keys_still_open_older_letters_and_a_foreign_key_is_refused():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    letter = _letter(ContactVault([old]))
    assert unseal(ContactVault([new, old]), letter).original == ORIGINAL
    with pytest.raises(ValueError, match="dead letter could not be decrypted"):
        unseal(ContactVault([new]), letter)


def test_version_1_letters_in_clear_are_still_read():
    legacy = {"schema_version": 1, "stage": "enricher", "reason": "boom", "error_type": "ValueError",
              "failed_at": "2026-01-02T03:04:05Z", "original_b64": base64.b64encode(b"\x00raw").decode()}
    assert unseal(ContactVault([Fernet.generate_key().decode()]), legacy).original == b"\x00raw"


def test_the_services_record_is_valid_and_sealed():
    vault = ContactVault([Fernet.generate_key().decode()])
    record = dead_letter("ingest", REASON, "validation_failed", ORIGINAL, vault=vault)
    assert event_errors("feedback.dlq", record) == [] and "original_b64" not in record
    assert EMAIL not in json.dumps(record) and unseal(vault, record).original == ORIGINAL
