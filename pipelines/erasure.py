"""Erasure of a respondent: who they are (the pseudonymous ref) and the confirmation event."""
from __future__ import annotations

import uuid
from typing import Any, Literal

from pipelines.pseudonym import normalise_email, normalise_phone, respondent_ref
from pipelines.vault import Contact

IdentifiedBy = Literal["ref", "email", "phone"]


def direct_ref(key: bytes, *, ref: str | None = None, email: str | None = None, phone: str | None = None
               ) -> tuple[str, IdentifiedBy]:
    """The ref named by an erasure request: given, or the HMAC of the email or phone."""
    given = [n for n, v in (("ref", ref), ("email", email), ("phone", phone)) if v]
    if len(given) != 1:
        raise ValueError("name exactly one of respondent_ref, email or phone")
    if ref:
        if not (ref.startswith("r_") and len(ref) == 26):
            raise ValueError("respondent_ref must look like r_ followed by 24 hex digits")
        return ref, "ref"
    if email:
        return respondent_ref(key, email=email), "email"
    return respondent_ref(key, phone=phone), "phone"


def contact_matches(contact: Contact, *, email: str | None = None, phone: str | None = None) -> bool:
    """Whether a decrypted contact holds the email or phone (normalised) of a request.

    A respondent who gave both gets the ref of the email; erasing by phone must
    still find them, so erasure also looks inside every contact record.
    """
    if email and contact.email and normalise_email(contact.email) == normalise_email(email):
        return True
    return bool(phone and contact.phone and normalise_phone(contact.phone) == normalise_phone(phone))


def confirmation(ref: str, identified_by: IdentifiedBy, requested_by: str, requested_at: str, completed_at: str,
                 *, contact_tombstoned: bool, documents_deleted: int, kafka_tombstones: int,
                 suppressed: bool = True) -> dict[str, Any]:
    """The gdpr.erasure event for one erased ref."""
    return {"schema_version": 1, "erasure_id": str(uuid.uuid4()), "respondent_ref": ref,
            "identified_by": identified_by, "requested_by": requested_by, "requested_at": requested_at,
            "completed_at": completed_at, "contact_tombstoned": contact_tombstoned,
            "documents_deleted": documents_deleted, "kafka_tombstones": kafka_tombstones, "suppressed": suppressed}
