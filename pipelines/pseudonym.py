"""Pseudonymous respondent references.

A respondent_ref is an HMAC of the normalised contact detail, so the same person
gets the same ref across channels and submissions (one notification per person)
while the ref alone reveals nothing without the key.
"""
from __future__ import annotations

import hashlib
import hmac
import re


def normalise_email(email: str) -> str:
    return email.strip().lower()


def normalise_phone(phone: str) -> str:
    digits = re.sub(r"[^\d+]", "", phone)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if digits.startswith("0"):
        digits = "+358" + digits[1:]  # Finnish national format
    return digits


def respondent_ref(key: bytes, *, email: str | None = None, phone: str | None = None,
                   push_token: str | None = None) -> str:
    """The ref for a respondent, from the most stable contact detail they gave."""
    if email:
        basis = "email:" + normalise_email(email)
    elif phone:
        basis = "phone:" + normalise_phone(phone)
    elif push_token:
        basis = "push:" + push_token.strip()
    else:
        raise ValueError("respondent_ref needs an email, a phone number or a push token")
    return "r_" + hmac.new(key, basis.encode("utf-8"), hashlib.sha256).hexdigest()[:24]
